# hailoc's DFC image: the Hailo AI Software Suite plus hailoc's small in-container worker.
# Load the suite first (docker load -i hailo8_ai_sw_suite_<YYYY-MM>.tar.gz); hailoc builds
# this image itself, or run `docker compose build dfc`.
ARG SUITE_IMAGE=hailo8_ai_sw_suite_2025-10:1
FROM ${SUITE_IMAGE}

# The suite's Python (with hailo_sdk_client). Override when its venv is not first on PATH,
# e.g. --build-arg WORKER_PYTHON=/local/workspace/hailo_venv/bin/python
ARG WORKER_PYTHON=python3
ENV HAILOC_WORKER_PYTHON=${WORKER_PYTHON} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

USER root
COPY src/hailoc/backends/hailo/worker/ /opt/hailoc/
RUN chmod -R a+rX /opt/hailoc \
 && (id -u hailoc >/dev/null 2>&1 || useradd --uid 10001 --create-home --shell /bin/sh hailoc) \
 && mkdir -p /local/workspace/work /local/workspace/hef \
 && chown hailoc /local/workspace/work /local/workspace/hef

# Never run the DFC as root: outputs land in host folders.
USER hailoc
WORKDIR /local/workspace
ENTRYPOINT ["/bin/sh", "-c", "exec \"$HAILOC_WORKER_PYTHON\" /opt/hailoc/worker.py \"$@\"", "hailoc-worker"]
