// What a converge pass did, in the log: a change is news every time; a problem only when it first
// appears or changes (a failing pull retried every minute would otherwise fill the journal).
import type { Logger } from '../log.js';
import type { ConvergeReport } from '../reconcile/converge.js';

const PROBLEMS = new Set(['failed', 'blocked', 'foreign', 'pending']);

export function createOutcomeLog(log: Logger): (report: ConvergeReport) => void {
  const reported = new Map<string, string>();
  return (report) => {
    for (const item of [
      ...report.images.map((i) => ({ key: `image ${i.ref}`, ...i })),
      ...report.containers.map((c) => ({ key: `container ${c.name}`, ...c })),
    ]) {
      const bad = PROBLEMS.has(item.status);
      const text = bad ? `${item.status}: ${item.message ?? ''}` : '';
      const repeated = reported.get(item.key) === text;
      reported.set(item.key, text);
      if (bad && !repeated) log.error({ item: item.key, status: item.status, reason: item.message }, 'Not converged');
      else if (!bad && item.status !== 'unchanged' && item.status !== 'present')
        log.info({ item: item.key, status: item.status, detail: item.message }, 'Converged');
    }
  };
}
