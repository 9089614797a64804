// An agent role as code: a pool loads it with FLEET_ROLE_MODULES=examples/roles/release-notes.ts
import { z } from 'zod';

export default {
  name: 'release_notes',
  description: 'Writes release notes from the review and the files.',
  instructions: 'You write release notes for end users: what changed, in plain words, one line per change.',
  outputSchema: z.object({ title: z.string(), notes: z.array(z.string()).min(1) }), // or outputJsonSchema: {...}
  // offline(input) { ... }   optional: defaults to a placeholder shaped by the schema
};
