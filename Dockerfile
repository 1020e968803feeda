# Builds the operator image: the manager, and the PSP simulator that
# config/simulator runs from the same image.

FROM golang:1.26.8 AS builder
WORKDIR /workspace

# Download the modules in their own layer, so that a change to the code alone
# does not download them again.
COPY go.mod go.sum ./
RUN go mod download

COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
COPY psp/ psp/
COPY simulator/ simulator/
COPY webhookserver/ webhookserver/
COPY hack/build-binaries.sh hack/build-binaries.sh

# BuildKit sets TARGETOS and TARGETARCH from --platform. Without them the
# build is for linux on the builder's architecture.
ARG TARGETOS
ARG TARGETARCH
RUN GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} hack/build-binaries.sh /out

FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /out/manager /manager
COPY --from=builder /out/psp-simulator /psp-simulator
USER 65532:65532

ENTRYPOINT ["/manager"]
