/**
 * The name rule shared by the workflow schema and the template fields: phase, workflow, template
 * and tool-role names become parts of Redis keys, BullMQ job ids and queue names.
 */

/** A letter, then up to 63 letters, digits, `_` or `-`. */
export const NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
