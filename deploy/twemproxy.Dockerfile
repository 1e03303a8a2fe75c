# twemproxy (nutcracker) from Debian's package, for deploy/docker-compose.yml.
# The configuration is mounted at /etc/nutcracker/nutcracker.yml (deploy/twemproxy.yml).
ARG BASE=debian:bookworm-slim
FROM $BASE
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nutcracker \
 && rm -rf /var/lib/apt/lists/*
USER nutcracker
EXPOSE 22121
# nutcracker exits on SIGINT; as PID 1 it would ignore SIGTERM and be killed after the timeout.
STOPSIGNAL SIGINT
# Stats (JSON) on 22222 stay inside the container unless you publish them.
ENTRYPOINT ["nutcracker", "--conf-file", "/etc/nutcracker/nutcracker.yml"]
CMD []
