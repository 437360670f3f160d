// The Engine implemented against the Docker API (over node:http; see docker/transport.ts), put
// together from one module per kind of resource.
import type { Engine } from './engine.js';
import { containerCalls } from './docker/containers.js';
import { eventCalls } from './docker/events.js';
import { execCalls } from './docker/exec.js';
import { archiveCalls } from './docker/archives.js';
import { imageCalls } from './docker/images.js';
import { createTransport, type DockerEngineOptions } from './docker/transport.js';

export type { DockerEngineOptions, EngineLog } from './docker/transport.js';

/** Creates the Docker-backed Engine. Nothing connects until the first call. */
export function createDockerEngine(options: DockerEngineOptions = {}): Engine {
  const transport = createTransport(options);
  return {
    ...imageCalls(transport),
    ...archiveCalls(transport),
    ...containerCalls(transport),
    ...execCalls(transport),
    ...eventCalls(transport),
  };
}
