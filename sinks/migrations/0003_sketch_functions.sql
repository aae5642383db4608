-- Quantiles from merged DDSketch states (streams/sketches.py), as global SQL functions.
--
-- A sketch is stored as bins Map(Int32, UInt64) (DDSketch bin key -> count) plus zero_count
-- (values at or below the smallest indexable value, i.e. exact zeros). Sketches merge by adding
-- counts, so any set of rows merges with sumMap(bins) and sum(zero_count), e.g.
--   SELECT llmwatch_quantile(0.99, sumMap(bins), sum(zero_count)) FROM t WHERE ...
--
-- llmwatch_quantile(q, bins, zero_count) returns what ddsketch's DDSketch.get_quantile_value
-- returns for the same state: rank = q * (count - 1); 0 if rank < zero_count; otherwise the value
-- of the first bin (ascending keys) whose cumulative count exceeds rank - zero_count. The bin
-- value is gamma^key * 2 / (1 + gamma), the point of least relative error in the bin, so the result
-- is within the relative accuracy (1%) of the exact value of rank floor(q * (count - 1)).
-- It is NULL for an empty sketch and throws when q is outside [0, 1] or NaN.
-- The relative accuracy 0.01 below must equal streams.sketches.RELATIVE_ACCURACY (tested). The
-- constants are computed exactly as ddsketch's LogarithmicMapping computes them; ClickHouse's
-- exp2 may differ from Python's math.pow in the last bit (relative difference below 1e-15).
--
-- SQL functions are global (not per database), hence the llmwatch_ prefix. Idempotent.

CREATE OR REPLACE FUNCTION llmwatch_sketch_bin_value AS (key) ->
    exp2(key / ((1 / log1p(2 * 0.01 / (1 - 0.01))) * log(2)))
    * (2 / (1 + (1 + 2 * 0.01 / (1 - 0.01))));

CREATE OR REPLACE FUNCTION llmwatch_sketch_key_at_rank AS (rank, bins) ->
    arraySort(mapKeys(bins))[greatest(1, arrayFirstIndex(
        running -> running > rank,
        arrayCumSum(arraySort((bin_count, bin_key) -> bin_key, mapValues(bins), mapKeys(bins)))
    ))];

CREATE OR REPLACE FUNCTION llmwatch_quantile AS (q, bins, zero_count) ->
    multiIf(
        throwIf(NOT (q >= 0 AND q <= 1), 'llmwatch_quantile: q must be in [0, 1]') != 0, NULL,
        zero_count + arraySum(mapValues(bins)) = 0, NULL,
        q * (toFloat64(zero_count + arraySum(mapValues(bins))) - 1) < zero_count, 0.,
        llmwatch_sketch_bin_value(llmwatch_sketch_key_at_rank(
            q * (toFloat64(zero_count + arraySum(mapValues(bins))) - 1) - zero_count, bins
        ))
    );
