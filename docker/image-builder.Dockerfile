# syntax=docker/dockerfile:1
# The image-builder image: kaniko's executor (builds images without a Docker daemon) plus deploy-runner-task,
# which clones the app repo, confines the build context and runs the executor. Packer is added for build-ami.
# kaniko runs as root by design: it unpacks base images into its own filesystem. Pin it by digest.
#
#   docker build -f docker/image-builder.Dockerfile \
#     --build-arg KANIKO_DIGEST=sha256:<digest of gcr.io/kaniko-project/executor:${KANIKO_VERSION}-debug> \
#     --build-arg PACKER_SHA256=<sha256 of packer_${PACKER_VERSION}_linux_amd64.zip> \
#     -t <account>.dkr.ecr.<region>.amazonaws.com/deploy-runner-image-builder:<tag> .

ARG RUST_VERSION=1.95
ARG KANIKO_VERSION=v1.23.2
ARG KANIKO_DIGEST
FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p deploy-runner-task

FROM debian:bookworm-slim AS packer
ARG PACKER_VERSION=1.11.2
ARG PACKER_SHA256
RUN test -n "$PACKER_SHA256" \
 && apt-get update && apt-get install -y --no-install-recommends ca-certificates curl unzip \
 && curl -fsSLo /tmp/packer.zip "https://releases.hashicorp.com/packer/${PACKER_VERSION}/packer_${PACKER_VERSION}_linux_amd64.zip" \
 && echo "${PACKER_SHA256}  /tmp/packer.zip" | sha256sum -c - \
 && unzip -d /out /tmp/packer.zip packer

FROM gcr.io/kaniko-project/executor:${KANIKO_VERSION}-debug@${KANIKO_DIGEST}
COPY --from=build /src/target/release/deploy-runner-task /kaniko/deploy-runner-task
COPY --from=packer /out/packer /kaniko/packer
ENV DEPLOY_RUNNER_TASK_CONFIG='{"image": {"executor_path": "/kaniko/executor"}, "packer_path": "/kaniko/packer"}'
ENTRYPOINT ["/kaniko/deploy-runner-task"]
