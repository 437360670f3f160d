// What names a restore loads images under. `docker load` tags whatever the archive says, over
// any local image of that name: a backup could replace the image other containers run from (an
// old backup would downgrade it) or another container's snapshot. So the archive's name lists
// (manifest.json, repositories, index.json) are rewritten on the way to the engine: the snapshot
// and the image it descends from are loaded under names of the restore's own, every other name
// is dropped, and the restore gives them their real names only where that takes none away.
import { normalizeImageRef } from '../engine/image-ref.js';

/** The entries of a `docker save` archive that name images. */
export const NAMING_ENTRIES = new Set(['manifest.json', 'repositories', 'index.json']);

/** Maps a reference in the archive to the one to load it under, or undefined to drop it. */
export type Rename = (ref: string) => string | undefined;

export function renameFor(keep: { snapshot: string; snapshotAs: string; image: string; imageAs: string }): Rename {
  const norm = (ref: string) => {
    try {
      return normalizeImageRef(ref);
    } catch {
      return undefined;
    }
  };
  const snapshot = norm(keep.snapshot);
  const image = norm(keep.image);
  return (ref) => {
    const n = norm(ref);
    if (n === undefined) return undefined;
    if (n === snapshot) return keep.snapshotAs;
    if (n === image) return keep.imageAs;
    return undefined;
  };
}

/** The entry's new content; what is not JSON, or not the expected shape, names nothing. */
export function rewriteNaming(entry: string, content: Buffer, rename: Rename): Buffer {
  let json: unknown;
  try {
    json = JSON.parse(content.toString('utf8'));
  } catch {
    return Buffer.from(entry === 'repositories' ? '{}' : entry === 'manifest.json' ? '[]' : '{"schemaVersion":2,"manifests":[]}');
  }
  if (entry === 'manifest.json') return Buffer.from(JSON.stringify(rewriteManifest(json, rename)));
  if (entry === 'repositories') return Buffer.from(JSON.stringify(rewriteRepositories(json, rename)));
  return Buffer.from(JSON.stringify(rewriteIndex(json, rename)));
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** [{Config, RepoTags, Layers}]: each image's names. */
function rewriteManifest(json: unknown, rename: Rename): unknown {
  if (!Array.isArray(json)) return [];
  return json.filter(isRecord).map((image) => {
    const tags = Array.isArray(image['RepoTags']) ? image['RepoTags'].filter((t): t is string => typeof t === 'string') : [];
    return { ...image, RepoTags: tags.map(rename).filter((t): t is string => t !== undefined) };
  });
}

/** {"repo": {"tag": "id"}}, the legacy list. */
function rewriteRepositories(json: unknown, rename: Rename): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  if (!isRecord(json)) return out;
  for (const [repo, tags] of Object.entries(json)) {
    if (!isRecord(tags)) continue;
    for (const [tag, id] of Object.entries(tags)) {
      const renamed = typeof id === 'string' ? rename(`${repo}:${tag}`) : undefined;
      if (!renamed) continue;
      const colon = renamed.lastIndexOf(':');
      (out[renamed.slice(0, colon)] ??= {})[renamed.slice(colon + 1)] = id as string;
    }
  }
  return out;
}

const IMAGE_NAME = 'io.containerd.image.name';
const REF_NAME = 'org.opencontainers.image.ref.name';

/** The OCI layout's index: names are annotations of its manifests. */
function rewriteIndex(json: unknown, rename: Rename): unknown {
  if (!isRecord(json) || !Array.isArray(json['manifests'])) return { schemaVersion: 2, manifests: [] };
  const manifests = json['manifests'].filter(isRecord).map((m) => {
    const annotations = isRecord(m['annotations']) ? { ...m['annotations'] } : {};
    const name = annotations[IMAGE_NAME];
    const renamed = typeof name === 'string' ? rename(name) : undefined;
    delete annotations[IMAGE_NAME];
    delete annotations[REF_NAME];
    if (renamed) {
      annotations[IMAGE_NAME] = renamed;
      annotations[REF_NAME] = renamed.slice(renamed.lastIndexOf(':') + 1);
    }
    return { ...m, annotations };
  });
  return { ...json, manifests };
}
