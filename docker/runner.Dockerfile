# syntax=docker/dockerfile:1
# The deploy runner image (planner and applier task definitions): git, ssh, terraform, terragrunt and the
# deploy-runner-task binary, running as a non-root user. Every download is pinned by version AND checksum; the
# checksums are required build arguments, so an unpinned build fails instead of trusting whatever is served.
#
#   docker build -f docker/runner.Dockerfile \
#     --build-arg TERRAFORM_SHA256=<sha256 of terraform_${TERRAFORM_VERSION}_linux_amd64.zip> \
#     --build-arg TERRAGRUNT_SHA256=<sha256 of terragrunt_linux_amd64> \
#     -t <account>.dkr.ecr.<region>.amazonaws.com/deploy-runner:<tag> .

ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p deploy-runner-task

FROM debian:bookworm-slim
ARG TERRAFORM_VERSION=1.15.5
ARG TERRAFORM_SHA256
ARG TERRAGRUNT_VERSION=0.93.11
ARG TERRAGRUNT_SHA256
RUN test -n "$TERRAFORM_SHA256" && test -n "$TERRAGRUNT_SHA256" \
 && apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl git openssh-client unzip \
 && curl -fsSLo /tmp/terraform.zip "https://releases.hashicorp.com/terraform/${TERRAFORM_VERSION}/terraform_${TERRAFORM_VERSION}_linux_amd64.zip" \
 && echo "${TERRAFORM_SHA256}  /tmp/terraform.zip" | sha256sum -c - \
 && unzip -d /usr/local/bin /tmp/terraform.zip terraform \
 && curl -fsSLo /usr/local/bin/terragrunt "https://github.com/gruntwork-io/terragrunt/releases/download/v${TERRAGRUNT_VERSION}/terragrunt_linux_amd64" \
 && echo "${TERRAGRUNT_SHA256}  /usr/local/bin/terragrunt" | sha256sum -c - \
 && chmod 0755 /usr/local/bin/terragrunt \
 && apt-get purge -y curl unzip && apt-get autoremove -y && rm -rf /var/lib/apt/lists/* /tmp/terraform.zip \
 && useradd --create-home --uid 10001 runner
COPY --from=build /src/target/release/deploy-runner-task /usr/local/bin/deploy-runner-task
USER runner
WORKDIR /home/runner
ENTRYPOINT ["/usr/local/bin/deploy-runner-task"]
