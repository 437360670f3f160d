// Labels skiff-core puts on what it creates. Ownership is decided by these alone: a container
// without MANAGED is someone else's and is never changed.

export const LABEL = {
  /** "true" on every container skiff-core created. */
  managed: 'io.skiff-core.managed',
  /** The config key the container was created for. */
  container: 'io.skiff-core.container',
  /** sha256 of the create body (without these labels): differs → the config changed. */
  specHash: 'io.skiff-core.spec-hash',
  /** The configured image reference the container descends from. */
  imageRef: 'io.skiff-core.image-ref',
  /**
   * Id of the configured image the container (or the snapshot it was recreated from) descends
   * from: differs from the image's current id → a new image was pulled or built.
   */
  baseImageId: 'io.skiff-core.base-image-id',
  /** On snapshot images: the container they were committed from. */
  snapshotOf: 'io.skiff-core.snapshot-of',
} as const;

/** The old container waits under NAME + this + STAMP while its replacement starts. */
export const PARKED_SUFFIX = '-replaced-';

/** Repository of snapshot images: `skiff-core-snapshot/NAME:YYYYMMDD-HHMMSS-mmm` (UTC). */
export const SNAPSHOT_REPO_PREFIX = 'skiff-core-snapshot/';

export function snapshotRef(container: string, at: Date): { repo: string; tag: string } {
  // Milliseconds too: two edits in one second must not make one snapshot take the other's name.
  const stamp = at.toISOString().replace(/[-:]/g, '').replace('T', '-').replace('.', '-').slice(0, 19);
  return { repo: `${SNAPSHOT_REPO_PREFIX}${container.toLowerCase()}`, tag: stamp };
}

export function isManaged(labels: Record<string, string>): boolean {
  return labels[LABEL.managed] === 'true';
}
