# One image for every Hydra process (api, worker, sim); the command picks the role.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
# node-llama-cpp is optional: omit it for api/ollama-worker images with `--build-arg WITH_LLAMACPP=false`.
ARG WITH_LLAMACPP=true
RUN if [ "$WITH_LLAMACPP" = "true" ]; then npm ci --omit=dev; else npm ci --omit=dev --omit=optional; fi
COPY . .
ENV NODE_ENV=production
ENTRYPOINT ["node", "bin/hydra.mjs"]
CMD ["api"]
