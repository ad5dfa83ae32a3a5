# The dev stack's chain: the same pinned anvil as tools/ (npm @foundry-rs/anvil-linux-amd64 1.7.1).
#   docker build -f deploy/dev/anvil.Dockerfile -t drlaas/anvil:1.7.1 deploy/dev
FROM node:22-bookworm-slim
RUN npm install --global --no-audit --no-fund @foundry-rs/anvil-linux-amd64@1.7.1 \
 && ln -s "$(npm root --global)/@foundry-rs/anvil-linux-amd64/bin/anvil" /usr/local/bin/anvil \
 && anvil --version \
 && useradd --uid 10001 --create-home anvil
USER 10001
EXPOSE 8545
ENTRYPOINT ["anvil"]
