/**
 * Template substitution: `{{requirements}}`, `{{var}}`, `{{phase.field}}`, nested paths and list
 * indexes (`{{plan.tasks[0].title}}`).
 *
 * One pass, inserted literally: the replacement is computed by a function (so `$&`, `$1` in a value
 * are not replacement patterns) and inserted text is never scanned again, so a value containing
 * `{{x}}` stays `{{x}}`. Strings are inserted as they are; other values as JSON; a path that resolves
 * to nothing becomes the empty string.
 */
import { parsePath, resolvePath, type TemplateContext } from './context.js';

export function renderTemplate(text: string, ctx: TemplateContext): string {
  return text.replace(/\{\{\s*([^{}]*?)\s*\}\}/g, (whole, inner: string) => {
    const ref = parsePath(inner);
    if (!ref) return whole;
    const value = resolvePath(ref, ctx);
    if (value === undefined || value === null) return '';
    return typeof value === 'string' ? value : JSON.stringify(value);
  });
}
