/**
 * The executable's exit statuses, in one place: what a scheduler (cron, systemd, Kubernetes Jobs)
 * can branch on. The table is printed by `--help` and repeated in the README.
 */

export const EXIT = {
  /** Everything asked for was done. */
  ok: 0,
  /** The run could not do its work: PACS or FHIR server unreachable, or another error. Nothing is lost; rerun. */
  failed: 1,
  /** The command line or its input is unusable: unknown option or --source, unreadable file (map). */
  usage: 2,
  /**
   * The run finished, but some studies failed (recorded for retry) or were quarantined, or a sweep held its
   * removals for a person (see `status`).
   */
  partial: 3,
  /**
   * `status`: a source is unhealthy (coverage short, overdue or never swept; studies dead-lettered or
   * quarantined). One code for every reason: a monitor pages on it, the reasons are in the output and --json.
   */
  unhealthy: 4,
  /** The configuration is invalid (sysexits EX_CONFIG); every problem is listed on stderr. */
  config: 78,
  /** Stopped by SIGINT or SIGTERM before the work was done; rerunning the same command resumes. */
  interrupted: 130,
  /** stdout was closed by its reader (`status | head -1`): 128 + SIGPIPE, as for any Unix tool. */
  closedPipe: 141,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The exit status a run ends with. Any status other than these (a new kind of failure) counts as failed. */
export function exitCodeForRun(status: string): ExitCode {
  if (status === 'ok') return EXIT.ok;
  if (status === 'partial') return EXIT.partial;
  if (status === 'interrupted') return EXIT.interrupted;
  return EXIT.failed;
}

/** Several runs in one command: an interrupt wins, then a failure, then a partial run. */
export function worstExit(codes: readonly ExitCode[]): ExitCode {
  const rank: ExitCode[] = [EXIT.interrupted, EXIT.failed, EXIT.partial];
  return rank.find((c) => codes.includes(c)) ?? EXIT.ok;
}

/** A command-line problem the user must fix (exit 2), as opposed to a failed run. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

// Kept within 80 columns, the width commander wraps the rest of --help to.
export const EXIT_CODE_HELP = `
Exit status:
  0    everything asked for was done
  1    failed run: PACS or FHIR server unreachable, or another error (map: the
       study cannot be mapped or is invalid); nothing is lost, rerun later
  2    usage: unknown command, option or --source; unusable input file (map)
  3    partial run: some studies failed (recorded and retried on later runs)
       or were quarantined, or a sweep held its removals for a person
       (sync --once --sweep --confirm-removals applies them; see status)
  4    status: a source is unhealthy: coverage short, overdue, never swept or
       removals held, or studies dead-lettered or quarantined (the reasons
       are printed)
  78   configuration error: every problem is listed on stderr
  130  interrupted by SIGINT or SIGTERM: the studies in hand were saved; run
       the same command again to resume (serve and the scheduled sync stop
       gracefully on a signal and exit 0)
  141  stdout closed by its reader (e.g. piped into head), as for any Unix tool`;
