// Pure parsers for the engine's streamed JSON: pull progress, build output and in-stream errors.
//
// The engine answers pulls and builds with HTTP 200 and then streams JSON objects, one per line;
// a failure after that point arrives as an object carrying `error`/`errorDetail`, never as an
// HTTP status. Nothing here does I/O.

import { StringDecoder } from 'node:string_decoder';

/** Progress of one layer of a pull. `current`/`total` count downloaded bytes (0 when unknown). */
export interface LayerProgress {
  id: string;
  /** The engine's last status for the layer, e.g. `Downloading`, `Extracting`, `Pull complete`. */
  status: string;
  current: number;
  total: number;
}

/** Aggregated pull progress; `current`/`total` are summed over the layers whose size is known. */
export interface PullProgress {
  /** The last status line that was not about one layer, e.g. `Digest: sha256:…`. */
  status: string;
  layers: LayerProgress[];
  current: number;
  total: number;
}

export type BuildProgress = { kind: 'step'; step: number; total: number; text: string } | { kind: 'output'; text: string };

export interface JsonLineParser {
  /** Feeds raw bytes (or text); complete objects are passed to the callback synchronously. */
  push(chunk: Uint8Array | string): void;
  /** Flushes the decoder; an unterminated object at the end is dropped. */
  end(): void;
}

/**
 * Splits a byte stream into JSON objects. Objects may be split across chunks (even inside a
 * multi-byte character) and may or may not be separated by newlines. Text that does not parse
 * as JSON is ignored.
 */
export function createJsonLineParser(onObject: (obj: unknown) => void): JsonLineParser {
  const decoder = new StringDecoder('utf8');
  let buffer = '';
  let depth = 0;
  let inString = false;
  let escaped = false;
  let start = -1;

  function scan(text: string): void {
    buffer += text;
    let consumedTo = 0;
    for (let i = buffer.length - text.length; i < buffer.length; i++) {
      const ch = buffer[i];
      if (inString) {
        if (escaped) escaped = false;
        else if (ch === '\\') escaped = true;
        else if (ch === '"') inString = false;
        continue;
      }
      if (ch === '"') {
        if (depth > 0) inString = true;
      } else if (ch === '{' || ch === '[') {
        if (depth === 0) start = i;
        depth++;
      } else if (ch === '}' || ch === ']') {
        if (depth === 0) continue;
        depth--;
        if (depth === 0) {
          emit(buffer.slice(start, i + 1));
          consumedTo = i + 1;
          start = -1;
        }
      } else if (depth === 0) {
        consumedTo = i + 1;
      }
    }
    buffer = depth > 0 && start !== -1 ? buffer.slice(start) : buffer.slice(consumedTo);
    if (start !== -1) start = 0;
  }

  function emit(text: string): void {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return;
    }
    onObject(value);
  }

  return {
    push(chunk) {
      scan(typeof chunk === 'string' ? chunk : decoder.write(chunk));
    },
    end() {
      const rest = decoder.end();
      if (rest.length > 0) scan(rest);
      buffer = '';
      depth = 0;
      inString = false;
      escaped = false;
      start = -1;
    },
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function asCount(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}

/** The error message carried by a streamed object (`errorDetail.message`, else `error`), if any. */
export function streamError(obj: unknown): string | undefined {
  if (!isRecord(obj)) return undefined;
  const detail = obj['errorDetail'];
  const fromDetail = isRecord(detail) ? asString(detail['message']) : undefined;
  if (fromDetail !== undefined && fromDetail.length > 0) return fromDetail;
  const error = asString(obj['error']);
  if (error !== undefined && error.length > 0) return error;
  if (obj['error'] !== undefined || detail !== undefined) return 'unknown engine error';
  return undefined;
}

// Statuses after which a layer's bytes are all on the device.
const LAYER_DONE = new Set(['Verifying Checksum', 'Download complete', 'Extracting', 'Pull complete', 'Already exists']);

export interface PullProgressTracker {
  /** Consumes one object of the pull stream and returns the progress so far. */
  push(obj: unknown): PullProgress;
  readonly progress: PullProgress;
}

/**
 * Aggregates a pull's progress objects. Byte counts follow the download phase only, so the
 * totals never go backwards when the engine switches to extracting.
 */
export function createPullProgressTracker(): PullProgressTracker {
  const layers = new Map<string, LayerProgress>();
  let status = '';

  function snapshot(): PullProgress {
    const list = [...layers.values()].map((layer) => ({ ...layer }));
    let current = 0;
    let total = 0;
    for (const layer of list) {
      current += layer.current;
      total += layer.total;
    }
    return { status, layers: list, current, total };
  }

  return {
    push(obj) {
      if (!isRecord(obj)) return snapshot();
      const text = asString(obj['status']);
      const id = asString(obj['id']);
      if (text === undefined) return snapshot();
      const detail = isRecord(obj['progressDetail']) ? obj['progressDetail'] : {};
      // Layer lines carry progressDetail; `Pulling from REPO` carries the tag as its id.
      if (id === undefined || obj['progressDetail'] === undefined) {
        status = id === undefined ? text : `${text} (${id})`;
        return snapshot();
      }
      const layer = layers.get(id) ?? { id, status: text, current: 0, total: 0 };
      layer.status = text;
      if (text === 'Downloading') {
        const total = asCount(detail['total']);
        const current = asCount(detail['current']);
        if (total !== undefined) layer.total = total;
        if (current !== undefined) layer.current = Math.max(layer.current, current);
      } else if (LAYER_DONE.has(text)) {
        if (text === 'Extracting' && layer.total === 0) {
          const total = asCount(detail['total']);
          if (total !== undefined) layer.total = total;
        }
        layer.current = layer.total;
      }
      layers.set(id, layer);
      return snapshot();
    },
    get progress() {
      return snapshot();
    },
  };
}

const STEP_LINE = /^Step (\d+)\/(\d+) : ?(.*)$/;

/** Classifies one complete line of classic-builder output. */
export function parseBuildLine(line: string): BuildProgress {
  const match = STEP_LINE.exec(line);
  if (match !== null) {
    return { kind: 'step', step: Number(match[1]), total: Number(match[2]), text: match[3] ?? '' };
  }
  return { kind: 'output', text: line };
}

export interface BuildOutputParser {
  /** Consumes one object of the build stream; events for completed lines go to the callback. */
  push(obj: unknown): void;
  /** Flushes a last line that had no newline. */
  end(): void;
  /** The in-stream error message, once one was seen. */
  readonly error: string | undefined;
  /** The image id reported by the engine (`aux.ID`), once seen. */
  readonly imageId: string | undefined;
  /** The last lines of output (steps included), oldest first. */
  readonly tail: string[];
}

/**
 * Turns the build stream into step/output events. The engine sends `Step n/m : …` and its
 * newline as separate objects, so text is joined and split on newlines here.
 */
export function createBuildOutputParser(onEvent: (event: BuildProgress) => void, options: { tailLines?: number } = {}): BuildOutputParser {
  const tailLines = options.tailLines ?? 20;
  const tail: string[] = [];
  let partial = '';
  let error: string | undefined;
  let imageId: string | undefined;

  function line(raw: string): void {
    const text = raw.replace(/\r$/, '').replace(/\s+$/, '');
    if (text.trim().length === 0) return;
    tail.push(text);
    if (tail.length > tailLines) tail.shift();
    onEvent(parseBuildLine(text));
  }

  function text(chunk: string): void {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    for (const part of parts) line(part);
  }

  return {
    push(obj) {
      if (!isRecord(obj)) return;
      const message = streamError(obj);
      if (message !== undefined) {
        error ??= message;
        return;
      }
      const stream = asString(obj['stream']);
      if (stream !== undefined) {
        text(stream);
        return;
      }
      const aux = obj['aux'];
      if (isRecord(aux)) {
        const id = asString(aux['ID']);
        if (id !== undefined) imageId = id;
        return;
      }
      // A base image pulled during the build reports like a pull; keep its state changes only.
      const status = asString(obj['status']);
      if (status !== undefined) {
        const detail = obj['progressDetail'];
        if (isRecord(detail) && detail['current'] !== undefined) return;
        const id = asString(obj['id']);
        text(`${id === undefined ? '' : `${id}: `}${status}\n`);
      }
    },
    end() {
      if (partial.length > 0) line(partial);
      partial = '';
    },
    get error() {
      return error;
    },
    get imageId() {
      return imageId;
    },
    get tail() {
      return [...tail];
    },
  };
}
