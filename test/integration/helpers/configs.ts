// Config fragments the integration tests share.

/**
 * A container entry (indented for `containers.NAME:`) that runs systemd as PID 1 the way this
 * sandbox allows: no --privileged or CAP ALL, SYS_ADMIN and cgroup v1 mounted read-only.
 */
export function systemdContainer(image: string, options: { extraMounts?: string[]; env?: string[] } = {}): string {
  const env = ['container=docker', ...(options.env ?? [])].map((e) => JSON.stringify(e)).join(', ');
  const mounts = ['/sys/fs/cgroup:/sys/fs/cgroup:ro', ...(options.extraMounts ?? [])].map((m) => `\n      - ${m}`).join('');
  return `
    image: ${image}
    entrypoint: ["/lib/systemd/systemd"]
    env: [${env}]
    stopSignal: RTMIN+3
    tty: true
    disableInit: true
    capAdd: [SYS_ADMIN]
    securityOpt: [seccomp=unconfined]
    mounts:${mounts}
    tmpFs:
      /run: rw,noexec,nosuid,size=65536k
      /run/lock: rw,noexec,nosuid,size=65536k
    startAfterCreate: true
    restartPolicy: always`;
}
