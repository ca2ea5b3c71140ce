/**
 * The transport of the counter service: framed MessagePack over TCP, one port per node for
 * both Raft messages and client requests. The wire format is specified in docs/PROTOCOL.md.
 *
 * - {@linkcode TransportServer}: listens, dispatches Raft messages and client requests.
 * - {@linkcode PeerSender}: sends Raft messages to peers, reconnecting with backoff.
 * - {@linkcode RpcClientConnection}: a client's connection to one node.
 * - Codec and framing functions for tools and tests.
 *
 * @module
 */

export { formatAddress, type HostPort, parseAddress } from "./address.ts";
export type { ScanLimits } from "./_msgpack_scan.ts";
export {
  BodyKind,
  type ClientRequest,
  type ClientResponse,
  CODEC_LIMITS,
  decodeBody,
  type DecodedBody,
  encodeHello,
  encodePeerAuth,
  encodePeerHeartbeat,
  encodeRaft,
  encodeRequest,
  encodeResponse,
  encodeSnapshotAck,
  encodeSnapshotChunk,
  ERROR_CODES,
  type ErrorCode,
  type Hello,
  type HelloBody,
  IDENTITY_HEX_PATTERN,
  PEER_AUTH_BYTES,
  type PeerAuth,
  type PeerAuthBody,
  type PeerHeartbeat,
  type PeerHeartbeatBody,
  ProtocolError,
  type RaftBody,
  type RequestBatchBody,
  type RequestBody,
  type ResponseBatchBody,
  type ResponseBody,
  type SnapshotAck,
  type SnapshotAckBody,
  type SnapshotChunk,
  type SnapshotChunkBody,
  type WireMap,
  type WireValue,
} from "./codec.ts";
export {
  BATCH_BYTES_SOFT_MAX,
  BATCH_ITEMS_MAX,
  encodeRequestBatch,
  encodeResponseBatch,
} from "./binary_codec.ts";
export {
  type BodyHandler,
  CONNECT_TIMEOUT_MS_DEFAULT,
  Connection,
  connectionLimits,
  type ConnectionOptions,
  QUEUE_BYTES_MAX_DEFAULT,
} from "./connection.ts";
export {
  assertFrameBytesMax,
  encodeFrame,
  FRAME_BYTES_LIMIT,
  FRAME_BYTES_MAX_DEFAULT,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  type FrameDecoderOptions,
  FrameError,
  type FrameErrorReason,
  writeFrame,
} from "./frame.ts";
export {
  BACKOFF_MS_INITIAL_DEFAULT,
  BACKOFF_MS_MAX_DEFAULT,
  PeerSender,
  type PeerSenderOptions,
  type PeerStats,
} from "./peers.ts";
export {
  CALLS_IN_FLIGHT_MAX_DEFAULT,
  RpcClientConnection,
  type RpcClientOptions,
  RpcError,
  type RpcFailure,
} from "./client_conn.ts";
export {
  CONNECTIONS_MAX_DEFAULT,
  HELD_BODIES_MAX,
  type HelloVerdict,
  ListenError,
  type ReplyFn,
  REQUESTS_IN_FLIGHT_MAX_DEFAULT,
  type TransportHandler,
  TransportServer,
  type TransportServerOptions,
} from "./server.ts";
