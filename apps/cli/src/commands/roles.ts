/**
 * Custom roles from the command line (issue 8), kept in Redis under the fleet prefix:
 *
 *   fleet roles add <file> [--replace]   register a role file (YAML or JSON)
 *   fleet roles list                     built-in and registered roles
 *   fleet roles show <name>              a role's definition (JSON)
 *   fleet roles remove <name>            unregister a role
 *
 * A registered role is served by `fleet agents --roles <name>` and by `fleet run`, with no code change.
 */
import { readFile } from 'node:fs/promises';
import { BUILTIN_ROLES, customRole, outputJsonSchema, placeholderFor } from '@agentfleet/agents';
import { FleetError, parseRoleText } from '@agentfleet/core';
import type { Command } from 'commander';
import { roleRegistry, say, withClient } from '../shared.js';

export function register(program: Command): void {
  const roles = program.command('roles').description('register, list, show and remove custom agent roles (YAML: instructions + output JSON Schema)');

  roles
    .command('add')
    .description('register a role file: name, description, instructions, output_schema (JSON Schema), optional provider, model, temperature')
    .argument('<file>', 'a .yaml, .yml or .json role file')
    .option('--replace', 'replace a registered role of the same name', false)
    .action(async (file: string, opts: { replace: boolean }) => {
      const text = await readFile(file, 'utf8').catch((err: Error) => {
        throw new FleetError('INVALID_INPUT', `cannot read ${file}: ${err.message}`);
      });
      const raw = parseRoleText(text, file);
      await withClient(async (client, config) => {
        const registered = await roleRegistry(client.redis, config.queuePrefix).add(raw, { replace: opts.replace, source: file });
        const def = registered.definition;
        say(`role ${def.name} registered${def.model ? ` (model ${def.model})` : ''}; serve it with: fleet agents --roles ${def.name}`);
        // The offline model answers with a placeholder shaped by the schema; say so when it cannot fit it.
        const role = customRole(def);
        const check = role.validateOutput?.(role.offline({ requirements: '', variables: {}, phase: 'check', instructions: undefined, upstream: [], upstreamErrors: [] }));
        if (check && !check.ok) say(`warning: the offline model's placeholder does not satisfy output_schema (${check.problems.join('; ')}); offline runs of this role will fail`);
      });
    });

  roles
    .command('list')
    .description('list the built-in roles and the registered ones')
    .action(async () => {
      for (const [name, role] of Object.entries(BUILTIN_ROLES)) process.stdout.write(`${name.padEnd(20)} built-in    ${role.description}\n`);
      await withClient(async (client, config) => {
        for (const r of await roleRegistry(client.redis, config.queuePrefix).list()) {
          process.stdout.write(`${r.definition.name.padEnd(20)} registered  ${r.definition.description}${r.definition.model ? ` [${r.definition.model}]` : ''}\n`);
        }
      });
    });

  roles
    .command('show')
    .description("print a role's definition as JSON (built-in roles: description, instructions and output JSON Schema)")
    .argument('<name>')
    .action(async (name: string) => {
      const builtin = BUILTIN_ROLES[name];
      if (builtin) {
        const schema = outputJsonSchema(builtin);
        const show = { name, builtin: true, description: builtin.description, instructions: builtin.instructions, output_schema: schema, offline_example: placeholderFor(schema) };
        process.stdout.write(JSON.stringify(show, null, 2) + '\n');
        return;
      }
      await withClient(async (client, config) => {
        const r = await roleRegistry(client.redis, config.queuePrefix).get(name);
        process.stdout.write(JSON.stringify({ ...r.definition, builtin: false, created_at: r.created_at, updated_at: r.updated_at }, null, 2) + '\n');
      });
    });

  roles
    .command('remove')
    .description('unregister a role (pools already serving it keep it until they restart)')
    .argument('<name>')
    .action(async (name: string) => {
      if (BUILTIN_ROLES[name]) throw new FleetError('CONFLICT', `"${name}" is a built-in role and cannot be removed`);
      await withClient(async (client, config) => {
        await roleRegistry(client.redis, config.queuePrefix).remove(name);
        say(`role ${name} removed`);
      });
    });
}
