# syntax=docker/dockerfile:1
# The deploy runner image (planner and applier task definitions): git, ssh, terraform, terragrunt and the
# deploy-runner-task binary, running as a non-root user. Every download is pinned by version AND checksum (per
# architecture; the checksums are required build arguments, so an unpinned build fails instead of trusting
# whatever is served), and Debian packages by version. Multi-arch: buildx sets TARGETARCH (amd64 or arm64).
#
#   docker buildx build --platform linux/amd64,linux/arm64 -f docker/runner.Dockerfile \
#     --build-arg TERRAFORM_SHA256_AMD64=... --build-arg TERRAFORM_SHA256_ARM64=... \
#     --build-arg TERRAGRUNT_SHA256_AMD64=... --build-arg TERRAGRUNT_SHA256_ARM64=... \
#     [--build-arg OPENTOFU_VERSION=... --build-arg OPENTOFU_SHA256_AMD64=... --build-arg OPENTOFU_SHA256_ARM64=...] \
#     -t <account>.dkr.ecr.<region>.amazonaws.com/deploy-runner:<tag> --push .
#
# OpenTofu (`tofu`, for a policy `binary` of `tofu`, or terragrunt driving it with the task's `tf_path`) is added
# only when OPENTOFU_VERSION is given, with its checksums required like the others.
#
# The task is the container's first process (the task definitions disable ECS's init): it is non-dumpable, so the
# tools it runs can't read the secrets ECS injects into its environment (docs/security.md).

ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p deploy-runner-task

FROM debian:bookworm-slim
ARG TARGETARCH
ARG TERRAFORM_VERSION=1.15.5
ARG TERRAFORM_SHA256_AMD64
ARG TERRAFORM_SHA256_ARM64
ARG TERRAGRUNT_VERSION=0.93.11
ARG TERRAGRUNT_SHA256_AMD64
ARG TERRAGRUNT_SHA256_ARM64
ARG OPENTOFU_VERSION=""
ARG OPENTOFU_SHA256_AMD64
ARG OPENTOFU_SHA256_ARM64
# Debian bookworm's versions; bump them together when the security archive moves on.
ARG CA_CERTIFICATES_VERSION=20230311+deb12u1
ARG CURL_VERSION=7.88.1-10+deb12u15
ARG GIT_VERSION=1:2.39.5-0+deb12u3
ARG OPENSSH_CLIENT_VERSION=1:9.2p1-2+deb12u10
ARG UNZIP_VERSION=6.0-28
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN case "$TARGETARCH" in \
      amd64) terraform_sha="$TERRAFORM_SHA256_AMD64"; terragrunt_sha="$TERRAGRUNT_SHA256_AMD64"; tofu_sha="$OPENTOFU_SHA256_AMD64" ;; \
      arm64) terraform_sha="$TERRAFORM_SHA256_ARM64"; terragrunt_sha="$TERRAGRUNT_SHA256_ARM64"; tofu_sha="$OPENTOFU_SHA256_ARM64" ;; \
      *) echo "unsupported TARGETARCH '$TARGETARCH'" >&2; exit 1 ;; \
    esac \
 && test -n "$terraform_sha" && test -n "$terragrunt_sha" \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      "ca-certificates=${CA_CERTIFICATES_VERSION}" "curl=${CURL_VERSION}" "git=${GIT_VERSION}" \
      "openssh-client=${OPENSSH_CLIENT_VERSION}" "unzip=${UNZIP_VERSION}" \
 && curl -fsSLo /tmp/terraform.zip "https://releases.hashicorp.com/terraform/${TERRAFORM_VERSION}/terraform_${TERRAFORM_VERSION}_linux_${TARGETARCH}.zip" \
 && echo "${terraform_sha}  /tmp/terraform.zip" | sha256sum -c - \
 && unzip -d /usr/local/bin /tmp/terraform.zip terraform \
 && curl -fsSLo /usr/local/bin/terragrunt "https://github.com/gruntwork-io/terragrunt/releases/download/v${TERRAGRUNT_VERSION}/terragrunt_linux_${TARGETARCH}" \
 && echo "${terragrunt_sha}  /usr/local/bin/terragrunt" | sha256sum -c - \
 && chmod 0755 /usr/local/bin/terragrunt \
 && if [ -n "$OPENTOFU_VERSION" ]; then \
      test -n "$tofu_sha" \
      && curl -fsSLo /tmp/tofu.zip "https://github.com/opentofu/opentofu/releases/download/v${OPENTOFU_VERSION}/tofu_${OPENTOFU_VERSION}_linux_${TARGETARCH}.zip" \
      && echo "${tofu_sha}  /tmp/tofu.zip" | sha256sum -c - \
      && unzip -d /usr/local/bin /tmp/tofu.zip tofu \
      && rm /tmp/tofu.zip; \
    fi \
 && apt-get purge -y curl unzip && apt-get autoremove -y && rm -rf /var/lib/apt/lists/* /tmp/terraform.zip \
 && useradd --create-home --uid 10001 --user-group runner
COPY --from=build /src/target/release/deploy-runner-task /usr/local/bin/deploy-runner-task
USER 10001:10001
WORKDIR /home/runner
ENTRYPOINT ["/usr/local/bin/deploy-runner-task"]
