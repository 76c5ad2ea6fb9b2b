# The image of the distributed deployment (docker-compose.yaml): the official Airflow image plus this repo's pinned
# requirements. DAGs, plugins and include/ are mounted, not baked in, so a change needs no rebuild.
FROM apache/airflow:3.3.2-python3.11

USER root
# zstd for inspecting archives by hand; procps for the log-rotation writer signals (pkill/pgrep); prometheus for
# promtool, which checks the triage rules' PromQL offline when the alert routes load (docs/triage.md).
RUN apt-get update \
 && apt-get install -y --no-install-recommends zstd procps prometheus \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
USER airflow

COPY --chown=airflow:root requirements.txt /opt/airflow/toilless-requirements.txt
# The lock pins apache-airflow itself to the image's version, so this adds providers and libraries only.
RUN pip install --no-cache-dir -r /opt/airflow/toilless-requirements.txt
