/**
 * A structural check of MessagePack bytes that runs before the real decoder.
 *
 * The decoder pre-allocates an array as soon as it reads an array header, before the elements
 * arrive, and it has no nesting limit. Walking the headers first, without allocating, proves that
 * every announced element is really present, that nesting stays shallow, that strings are valid
 * UTF-8 and that no extension or reserved type appears; only then is the decoder allowed to
 * allocate. The walk skips string and
 * binary payloads by their length, so it costs one step per value, not per byte.
 *
 * @module
 */

/** Limits enforced by {@linkcode scanMsgpack}. */
export interface ScanLimits {
  /** Longest string, in UTF-8 bytes. */
  strBytesMax: number;
  /** Longest binary value, in bytes. */
  binBytesMax: number;
  /** Most elements in one array. */
  arrayLengthMax: number;
  /** Most entries in one map. */
  mapLengthMax: number;
  /** Deepest nesting of arrays and maps; the outermost container is depth 1. */
  depthMax: number;
  /**
   * Most values in the whole body, containers and map keys included: bounds what decoding
   * builds, since every value becomes at least one object or array slot.
   */
  valuesMax: number;
}

/**
 * Checks that `bytes` hold exactly one well-formed MessagePack value within `limits`, whose map
 * keys are all strings, whose strings are valid UTF-8 and which uses no extension types. Returns null when it does, or the
 * reason it does not.
 */
export function scanMsgpack(bytes: Uint8Array, limits: ScanLimits): string | null {
  const end = bytes.length;
  // Per open container: values still expected (a map of n entries expects 2n) and whether it is
  // a map, so even counts mark a key position.
  const remaining: number[] = [];
  const isMap: boolean[] = [];
  let depth = 0;
  let pos = 0;
  let values = 0;

  while (true) {
    if (pos >= end) return "Truncated MessagePack value";
    if (++values > limits.valuesMax) {
      return `More than ${limits.valuesMax} MessagePack values in one body`;
    }
    const atKey = depth > 0 && isMap[depth - 1] && remaining[depth - 1] % 2 === 0;
    const head = bytes[pos++];
    // Set when the value is a string or binary of `dataBytes` bytes, or a container of
    // `containerLength` elements.
    let dataBytes = -1;
    let containerLength = -1;
    let containerIsMap = false;
    let fixedBytes = 0;

    if (head <= 0x7f || head >= 0xe0) {
      // fixint: no payload
    } else if (head <= 0x8f) {
      containerLength = head & 0x0f;
      containerIsMap = true;
    } else if (head <= 0x9f) {
      containerLength = head & 0x0f;
    } else if (head <= 0xbf) {
      dataBytes = head & 0x1f;
      if (dataBytes > limits.strBytesMax) return stringTooLong(dataBytes, limits);
    } else {
      const sizeBytes = SIZE_BYTES[head - 0xc0];
      if (sizeBytes === undefined || sizeBytes < 0) {
        return head >= 0xc7 && head <= 0xc9 || head >= 0xd4 && head <= 0xd8
          ? "MessagePack extension types are not allowed"
          : `Unknown MessagePack type byte 0x${head.toString(16)}`;
      }
      if (end - pos < sizeBytes) return "Truncated MessagePack value";
      const size = sizeBytes === 0
        ? 0
        : sizeBytes === 1
        ? bytes[pos]
        : sizeBytes === 2
        ? (bytes[pos] << 8) | bytes[pos + 1]
        : bytes[pos] * 0x100_0000 + ((bytes[pos + 1] << 16) | (bytes[pos + 2] << 8) |
          bytes[pos + 3]);
      switch (head) {
        case 0xc4:
        case 0xc5:
        case 0xc6:
          pos += sizeBytes;
          dataBytes = size;
          if (dataBytes > limits.binBytesMax) {
            return `Binary of ${dataBytes} bytes exceeds the limit of ${limits.binBytesMax}`;
          }
          break;
        case 0xd9:
        case 0xda:
        case 0xdb:
          pos += sizeBytes;
          dataBytes = size;
          if (dataBytes > limits.strBytesMax) return stringTooLong(dataBytes, limits);
          break;
        case 0xdc:
        case 0xdd:
          pos += sizeBytes;
          containerLength = size;
          break;
        case 0xde:
        case 0xdf:
          pos += sizeBytes;
          containerLength = size;
          containerIsMap = true;
          break;
        default:
          // nil, booleans, numbers: the table entry is the payload size.
          fixedBytes = FIXED_BYTES[head - 0xc0];
      }
    }

    if (atKey && !isStr(head)) {
      return "Map key is not a string";
    }
    if (dataBytes > 0 || fixedBytes > 0) {
      const payloadBytes = dataBytes > 0 ? dataBytes : fixedBytes;
      if (end - pos < payloadBytes) return "Truncated MessagePack value";
      if (isStr(head) && !isUtf8(bytes, pos, pos + payloadBytes)) {
        return "String is not valid UTF-8";
      }
      pos += payloadBytes;
    }

    if (containerLength > 0) {
      const limit = containerIsMap ? limits.mapLengthMax : limits.arrayLengthMax;
      if (containerLength > limit) {
        return `${containerIsMap ? "Map" : "Array"} of ${containerLength} elements exceeds ` +
          `the limit of ${limit}`;
      }
      const values = containerIsMap ? containerLength * 2 : containerLength;
      // Every value takes at least one byte, so more values than bytes left is a lie.
      if (values > end - pos) return "Truncated MessagePack value";
      if (depth >= limits.depthMax) {
        return `Nesting deeper than ${limits.depthMax} levels`;
      }
      remaining[depth] = values;
      isMap[depth] = containerIsMap;
      depth++;
      continue;
    }

    // A complete value: count it against its container, closing containers it completes.
    while (depth > 0) {
      remaining[depth - 1]--;
      if (remaining[depth - 1] > 0) break;
      depth--;
    }
    if (depth === 0) break;
  }

  if (pos !== end) return `${end - pos} trailing bytes after the MessagePack value`;
  return null;
}

function isStr(head: number): boolean {
  return (head >= 0xa0 && head <= 0xbf) || (head >= 0xd9 && head <= 0xdb);
}

// The decoder turns invalid UTF-8 into arbitrary text instead of failing, so it is caught here.
// Ids and ops are ASCII, so the common case is a plain byte loop.
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function isUtf8(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    if (bytes[i] >= 0x80) {
      try {
        strictUtf8.decode(bytes.subarray(i, end));
        return true;
      } catch {
        return false;
      }
    }
  }
  return true;
}

function stringTooLong(strBytes: number, limits: ScanLimits): string {
  return `String of ${strBytes} bytes exceeds the limit of ${limits.strBytesMax}`;
}

// Indexed by head byte minus 0xc0: bytes of the length field for str/bin/array/map, 0 for
// fixed-size values, -1 for types the protocol refuses (reserved 0xc1 and extensions).
const SIZE_BYTES: readonly number[] = [
  0, // c0 nil
  -1, // c1 never used
  0, // c2 false
  0, // c3 true
  1, // c4 bin 8
  2, // c5 bin 16
  4, // c6 bin 32
  -1, // c7 ext 8
  -1, // c8 ext 16
  -1, // c9 ext 32
  0, // ca float 32
  0, // cb float 64
  0, // cc uint 8
  0, // cd uint 16
  0, // ce uint 32
  0, // cf uint 64
  0, // d0 int 8
  0, // d1 int 16
  0, // d2 int 32
  0, // d3 int 64
  -1, // d4 fixext 1
  -1, // d5 fixext 2
  -1, // d6 fixext 4
  -1, // d7 fixext 8
  -1, // d8 fixext 16
  1, // d9 str 8
  2, // da str 16
  4, // db str 32
  2, // dc array 16
  4, // dd array 32
  2, // de map 16
  4, // df map 32
];

// Indexed by head byte minus 0xc0: payload bytes of fixed-size values.
const FIXED_BYTES: readonly number[] = [
  0, // c0 nil
  0, // c1
  0, // c2 false
  0, // c3 true
  0, // c4
  0, // c5
  0, // c6
  0, // c7
  0, // c8
  0, // c9
  4, // ca float 32
  8, // cb float 64
  1, // cc uint 8
  2, // cd uint 16
  4, // ce uint 32
  8, // cf uint 64
  1, // d0 int 8
  2, // d1 int 16
  4, // d2 int 32
  8, // d3 int 64
];
