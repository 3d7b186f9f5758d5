# syntax=docker/dockerfile:1
# The image-builder image: kaniko's executor (builds images without a Docker daemon) plus deploy-runner-task,
# which clones the app repo, confines the build context and runs the executor. Packer is added for build-ami.
# Pin kaniko by digest (of the multi-arch index) and packer by checksum per architecture; buildx sets TARGETARCH.
#
#   docker buildx build --platform linux/amd64,linux/arm64 -f docker/image-builder.Dockerfile \
#     --build-arg KANIKO_DIGEST=sha256:<digest of gcr.io/kaniko-project/executor:${KANIKO_VERSION}-debug> \
#     --build-arg PACKER_SHA256_AMD64=... --build-arg PACKER_SHA256_ARM64=... \
#     -t <account>.dkr.ecr.<region>.amazonaws.com/deploy-runner-image-builder:<tag> --push .
#
# It runs as root: kaniko unpacks base images over its own root filesystem and runs the Dockerfile's steps there,
# which needs root in the container (that is kaniko's design; it needs no Docker daemon and no privileged mode).
# The task, its first process, is non-dumpable, and kaniko and packer get no git credential (docs/security.md).

ARG RUST_VERSION=1.95
ARG KANIKO_VERSION=v1.23.2
ARG KANIKO_DIGEST
FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p deploy-runner-task

FROM debian:bookworm-slim AS packer
ARG TARGETARCH
ARG PACKER_VERSION=1.11.2
ARG PACKER_SHA256_AMD64
ARG PACKER_SHA256_ARM64
ARG CA_CERTIFICATES_VERSION=20230311+deb12u1
ARG CURL_VERSION=7.88.1-10+deb12u15
ARG UNZIP_VERSION=6.0-28
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN case "$TARGETARCH" in \
      amd64) packer_sha="$PACKER_SHA256_AMD64" ;; \
      arm64) packer_sha="$PACKER_SHA256_ARM64" ;; \
      *) echo "unsupported TARGETARCH '$TARGETARCH'" >&2; exit 1 ;; \
    esac \
 && test -n "$packer_sha" \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      "ca-certificates=${CA_CERTIFICATES_VERSION}" "curl=${CURL_VERSION}" "unzip=${UNZIP_VERSION}" \
 && curl -fsSLo /tmp/packer.zip "https://releases.hashicorp.com/packer/${PACKER_VERSION}/packer_${PACKER_VERSION}_linux_${TARGETARCH}.zip" \
 && echo "${packer_sha}  /tmp/packer.zip" | sha256sum -c - \
 && unzip -d /out /tmp/packer.zip packer

FROM gcr.io/kaniko-project/executor:${KANIKO_VERSION}-debug@${KANIKO_DIGEST}
COPY --from=build /src/target/release/deploy-runner-task /kaniko/deploy-runner-task
COPY --from=packer /out/packer /kaniko/packer
ENV DEPLOY_RUNNER_TASK_CONFIG='{"image": {"executor_path": "/kaniko/executor"}, "packer_path": "/kaniko/packer"}'
ENTRYPOINT ["/kaniko/deploy-runner-task"]
