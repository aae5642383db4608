"""Local stand-ins for process edges (paid LLM APIs): HTTP servers on 127.0.0.1 with the providers' real
response shapes."""
