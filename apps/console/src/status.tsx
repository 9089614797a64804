/**
 * Status shown as an icon and a word, never by colour alone (the colour only repeats what the text says).
 */
const ICONS: Record<string, string> = {
  created: '○',
  pending: '○',
  queued: '⧗',
  active: '▶',
  running: '▶',
  retrying: '↻',
  waiting: '⏸',
  completed: '✔',
  failed: '✖',
  skipped: '⤼',
  cancelled: '⊘',
};

/** A status badge: `✔ completed`. `detail` follows the word (an attempt number, an error code). */
export function StatusBadge({ status, detail }: { status: string; detail?: string | undefined }) {
  return (
    <span className={`status status-${status}`}>
      <span aria-hidden="true">{ICONS[status] ?? '•'} </span>
      {status}
      {detail ? <span className="status-detail"> {detail}</span> : null}
    </span>
  );
}
