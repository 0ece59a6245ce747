# The e2e fixtures image (test/cluster/images.sh): the bundled sample agent, stub upstream and Akto receiver on the
# same locally assembled Node.js base as the project's image.
ARG NODE_IMAGE
FROM ${NODE_IMAGE}
WORKDIR /e2e
COPY agent.js upstream.js ./
USER 65532:65532
CMD ["node", "/e2e/agent.js"]
