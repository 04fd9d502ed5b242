# Switchboard in a container: built with the README's command, run as a non-root user on a
# distroless base with the shipped config.yaml (the mock provider: works with no API key).
#   docker build -t switchboard .
#   docker run -p 8080:8080 switchboard
# Mount your own config over /etc/switchboard/config.yaml; state lives in /var/lib/switchboard.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked && mkdir -p /out/state

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/switchboard /usr/local/bin/switchboard
COPY --from=build /src/config.yaml /etc/switchboard/config.yaml
COPY --from=build --chown=nonroot:nonroot /out/state /var/lib/switchboard
USER nonroot
EXPOSE 8080
# State (usage, spend, context) in a volume the non-root user owns; the shipped config reads it.
ENV SWITCHBOARD_DATA_DIR=/var/lib/switchboard
VOLUME ["/var/lib/switchboard"]
# Every interface: inside a container, 127.0.0.1 would reach no one.
ENTRYPOINT ["/usr/local/bin/switchboard", "serve", "--config", "/etc/switchboard/config.yaml", "--listen", "0.0.0.0:8080"]
