# llmwatch worker and sink image (docker-compose.yml runs `llmwatch worker` and `llmwatch sink`).
# The build stage makes llmwatch's wheel. The runtime stage installs exactly the packages and versions of
# requirements/runtime.lock (pip checks every file's sha256; the same pins as requirements/dev.lock,
# which `make install` uses), then the wheel without resolving anything, and runs as a non-root user, so
# no source tree or pip cache ends up in the image. Regenerate the locks with `make lock`.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --disable-pip-version-check --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LLMWATCH_DATA_DIR=/var/lib/llmwatch \
    LLMWATCH_SLO_FILE=/etc/llmwatch/slos.yaml
RUN groupadd --system --gid 10001 llmwatch \
    && useradd --system --uid 10001 --gid llmwatch --home-dir /var/lib/llmwatch --no-create-home \
        --shell /usr/sbin/nologin llmwatch \
    && install -d -o llmwatch -g llmwatch -m 0750 /var/lib/llmwatch
# Dependencies first: this layer is rebuilt only when the lock changes.
COPY requirements/runtime.lock /tmp/runtime.lock
# torch is locked to its CPU-only build, which PyTorch publishes on its own index (same file, same hash).
RUN pip install --root-user-action=ignore --find-links https://download.pytorch.org/whl/cpu/torch/ \
        --require-hashes -r /tmp/runtime.lock \
    && rm /tmp/runtime.lock
# The SLO file and price-override example; compose mounts ./config over this to change SLOs live.
COPY --from=build /src/config /etc/llmwatch
COPY --from=build /wheels /tmp/wheels
RUN pip install --root-user-action=ignore --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels \
    && pip check
USER llmwatch:llmwatch
WORKDIR /var/lib/llmwatch
CMD ["llmwatch", "worker"]
