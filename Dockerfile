# siem-agent in a container, for the Kubernetes CronJob of deploy/kubernetes.
# The same release build as CI (`cargo build --release --locked`) and the
# same binary; the runtime image holds only it, glibc and the CA roots, and
# runs as a user without privileges.
FROM rust:1.89-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --bin siem-agent

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/siem-agent /usr/bin/siem-agent
USER 65532:65532
ENTRYPOINT ["/usr/bin/siem-agent"]
