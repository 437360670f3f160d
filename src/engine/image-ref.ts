// Image references, compared the way the Docker engine compares them.
//
// The engine treats `ubuntu`, `ubuntu:latest`, `library/ubuntu` and `docker.io/library/ubuntu:latest`
// as one image, keeps an explicit registry (`127.0.0.1:5000/x`) as written, and pins by digest
// (`x@sha256:…`). These helpers are pure so the reconciler can plan with them.

import { SkiffError } from '../errors.js';

/** A reference broken into the parts the engine's API needs. */
export interface ImageRef {
  /** Registry host, with port when given; `docker.io` when the reference names none. */
  domain: string;
  /** Repository path inside the registry, e.g. `library/ubuntu` or `skiffos/core`. */
  path: string;
  /** Tag as written; undefined when the reference has none. */
  tag: string | undefined;
  /** `algorithm:hex` digest as written; undefined when the reference has none. */
  digest: string | undefined;
}

/** The repository and the single tag or digest to pull; `tag` is `latest` when neither is given. */
export interface RepoTag {
  /** Repository as written by the caller (registry kept, no `docker.io/` added). */
  repo: string;
  tag: string | undefined;
  digest: string | undefined;
}

const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_NAMESPACE = 'library';
const DEFAULT_TAG = 'latest';

// The grammar of github.com/distribution/reference, written out here.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const PORT = /^[0-9]+$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const NAME_MAX_LENGTH = 255;

function invalid(ref: string, reason: string): SkiffError {
  return new SkiffError('CONFIG_INVALID', `invalid image reference "${ref}": ${reason}`);
}

function isDomain(candidate: string): boolean {
  const [host, port, ...rest] = candidate.split(':');
  if (host === undefined || rest.length > 0) return false;
  if (port !== undefined && !PORT.test(port)) return false;
  return host.split('.').every((part) => DOMAIN_COMPONENT.test(part));
}

/**
 * Parses a reference the way the engine does. Throws SkiffError CONFIG_INVALID naming the
 * reference and the reason when it is not a valid reference.
 */
export function parseImageRef(ref: string): ImageRef {
  if (ref.length === 0) throw invalid(ref, 'empty');
  if (/\s/.test(ref)) throw invalid(ref, 'contains whitespace');

  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw invalid(ref, `bad digest "${digest}"`);
  }

  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(ref, `bad tag "${tag}"`);
  }

  if (rest.length === 0) throw invalid(ref, 'no repository name');
  if (rest.length > NAME_MAX_LENGTH) throw invalid(ref, `name longer than ${NAME_MAX_LENGTH} characters`);

  let domain = DEFAULT_DOMAIN;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash !== -1) {
    const first = rest.slice(0, slash);
    // Like the engine: the first component is a registry when it looks like a host.
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      if (!isDomain(first)) throw invalid(ref, `bad registry host "${first}"`);
      domain = first === LEGACY_DEFAULT_DOMAIN ? DEFAULT_DOMAIN : first;
      path = rest.slice(slash + 1);
    }
  }

  const components = path.split('/');
  for (const component of components) {
    if (!PATH_COMPONENT.test(component)) {
      const reason = component !== component.toLowerCase() ? 'repository name must be lowercase' : `bad path component "${component}"`;
      throw invalid(ref, reason);
    }
  }
  if (domain === DEFAULT_DOMAIN && components.length === 1) path = `${OFFICIAL_NAMESPACE}/${path}`;

  return { domain, path, tag, digest };
}

/**
 * The fully qualified form the engine compares: `docker.io/library/ubuntu:latest`,
 * `127.0.0.1:5000/x:latest`, `docker.io/library/ubuntu@sha256:…` (no tag added to digest refs).
 */
export function normalizeImageRef(ref: string): string {
  const parsed = parseImageRef(ref);
  const tag = parsed.tag ?? (parsed.digest === undefined ? DEFAULT_TAG : undefined);
  return `${parsed.domain}/${parsed.path}${tag === undefined ? '' : `:${tag}`}${parsed.digest === undefined ? '' : `@${parsed.digest}`}`;
}

/** Whether two references name the same image as far as the engine is concerned. */
export function sameImageRef(a: string, b: string): boolean {
  return normalizeImageRef(a) === normalizeImageRef(b);
}

/**
 * Splits a reference into the `fromImage` and `tag` parameters of a pull. The repository is kept
 * as written; the tag defaults to `latest` unless a digest pins the image (a pull with an empty
 * tag would fetch every tag of the repository).
 */
export function splitRepoTag(ref: string): RepoTag {
  const parsed = parseImageRef(ref);
  let repo = ref;
  const at = repo.indexOf('@');
  if (at !== -1) repo = repo.slice(0, at);
  if (parsed.tag !== undefined) repo = repo.slice(0, repo.length - parsed.tag.length - 1);
  if (parsed.digest !== undefined) return { repo, tag: undefined, digest: parsed.digest };
  return { repo, tag: parsed.tag ?? DEFAULT_TAG, digest: undefined };
}

/**
 * The reference to pull when `pull.registry` is set: `REGISTRY/REF`. A `docker.io/` (or
 * `index.docker.io/`) prefix on REF is dropped first; the tag defaults to `latest`.
 * Throws CONFIG_INVALID when REF already names another registry, or when the result is invalid.
 */
export function withRegistry(registry: string, ref: string): string {
  const host = registry.replace(/\/+$/, '');
  if (host.length === 0 || /^[a-z]+:\/\//i.test(host)) {
    throw new SkiffError('CONFIG_INVALID', `invalid registry "${registry}": expected a host such as quay.io or 127.0.0.1:5000`);
  }
  const parsed = parseImageRef(ref);
  let local = ref;
  for (const prefix of [`${DEFAULT_DOMAIN}/`, `${LEGACY_DEFAULT_DOMAIN}/`]) {
    if (local.startsWith(prefix)) local = local.slice(prefix.length);
  }
  if (parsed.domain !== DEFAULT_DOMAIN) {
    throw new SkiffError(
      'CONFIG_INVALID',
      `image "${ref}" already names registry ${parsed.domain}; it cannot be pulled from registry ${host}`,
    );
  }
  const combined = `${host}/${local}`;
  const result = parseImageRef(combined);
  if (result.tag === undefined && result.digest === undefined) return `${combined}:${DEFAULT_TAG}`;
  return combined;
}
