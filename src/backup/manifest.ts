// What a backup file says about itself: its first entry, `skiff-core-backup.json`. A backup may
// come from anywhere, so it is checked like any other input before anything is loaded.
import { z } from 'zod';
import { SNAPSHOT_REPO_PREFIX } from '../reconcile/labels.js';

export const MANIFEST_NAME = 'skiff-core-backup.json';
/** A manifest is a few kilobytes; anything near this is not one. */
export const MANIFEST_MAX_BYTES = 1024 * 1024;

export const BackupManifest = z.object({
  format: z.literal(1),
  /** The container's config key where it was backed up. */
  container: z.string().min(1).max(128),
  createdAt: z.string(),
  skiffCoreVersion: z.string(),
  /** The snapshot image holding the container's files, `skiff-core-snapshot/NAME:STAMP`. */
  snapshot: z.string().startsWith(SNAPSHOT_REPO_PREFIX).max(256),
  /** The configured image it descends from, saved alongside so the daemon need not fetch it. */
  image: z.string().min(1).max(256),
  platform: z.object({ os: z.string(), architecture: z.string(), variant: z.string().optional() }),
  /** The container's config entry as it was in force; checked by the config loader on restore. */
  entry: z.record(z.string(), z.unknown()),
});
export type BackupManifest = z.infer<typeof BackupManifest>;

/** The manifest in `bytes`, or why it is not one. */
export function parseManifest(bytes: Buffer): BackupManifest | string {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    return `${MANIFEST_NAME} is not JSON (${(err as Error).message})`;
  }
  const parsed = BackupManifest.safeParse(json);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  return `${MANIFEST_NAME}: ${issue?.path.join('.') || '(top)'}: ${issue?.message ?? 'invalid'}`;
}

/**
 * Why a backup cannot run on an engine of `arch`, or undefined when it can. Images name
 * platforms as Go does (amd64, arm64, arm); the variant (v6/v7) is left to the engine.
 */
export function platformMismatch(manifest: BackupManifest, engine: { os: string; arch: string }): string | undefined {
  const { os, architecture } = manifest.platform;
  if (architecture === engine.arch && (!engine.os || os === engine.os)) return undefined;
  return (
    `this backup of ${manifest.container} holds ${os}/${architecture} files and this device runs ${engine.os}/${engine.arch}: ` +
    'restore it on a device of the same architecture'
  );
}
