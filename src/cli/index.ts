// The `isomodel` command line. Every command loads what it needs when it runs (dynamic imports):
// the gateway, the MCP SDK, the Kubernetes client and the validation stack take seconds to load,
// and `isomodel --help` or `isomodel ls` need none of them (bench/cli-start.ts measures it).
import { Command, Option } from 'commander';
import type { Config, ConfigInput } from '../config/config.js';
import type { BatchCliOpts } from './batch.js';

interface GlobalOpts {
  config?: string;
  modelsDir?: string;
  stateDir?: string;
}

/** The configuration reader, loaded; the file is read when the function is called. */
async function configLoader(opts: GlobalOpts, extra: ConfigInput = {}): Promise<() => Config> {
  const { loadConfig } = await import('../config/config.js');
  const overrides: ConfigInput = { ...extra };
  if (opts.modelsDir) overrides.models_dir = opts.modelsDir;
  if (opts.stateDir) overrides.state_dir = opts.stateDir;
  return () => loadConfig({ configFile: opts.config, overrides });
}

async function configFrom(opts: GlobalOpts, extra: ConfigInput = {}): Promise<Config> {
  return (await configLoader(opts, extra))();
}

/**
 * A command whose own subcommands and options live in a module loaded only when it runs: its
 * arguments (--help included) go to the real command, built then.
 */
function lazyGroup(
  program: Command,
  name: string,
  description: string,
  build: (config: () => Config) => Promise<Command>,
): void {
  program
    .command(name)
    .description(description)
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[args...]')
    .action(async (_args: string[], _opts: unknown, cmd: Command) => {
      const real = (await build(await configLoader(program.opts<GlobalOpts>()))).name(`isomodel ${name}`);
      real.exitOverride((e) => {
        throw e;
      });
      try {
        await real.parseAsync(cmd.args, { from: 'user' });
      } catch (e) {
        // --help and --version print and end; commander has already said what was wrong otherwise.
        const code = (e as { code?: string; exitCode?: number }).code;
        if (code === 'commander.helpDisplayed' || code === 'commander.help' || code === 'commander.version') return;
        if (code?.startsWith('commander.')) {
          process.exitCode = (e as { exitCode?: number }).exitCode ?? 1;
          return;
        }
        throw e;
      }
    });
}

function defaultUrl(): string {
  return process.env.ISOMODEL_URL ?? `http://127.0.0.1:${process.env.ISOMODEL_PORT ?? process.env.PORT ?? 8000}`;
}

function parseOptions(pairs: string[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq < 1) throw new Error(`--option takes key=value (got "${p}")`);
    const raw = p.slice(eq + 1);
    try {
      out[p.slice(0, eq)] = JSON.parse(raw);
    } catch {
      out[p.slice(0, eq)] = raw;
    }
  }
  return out;
}

export function buildCli(): Command {
  const program = new Command('isomodel')
    .description('Serve many isolated bio-sequence models behind one API')
    .option('-c, --config <file>', 'config file (default: isomodel.config.yaml if present)')
    .option('--models-dir <dir>', 'models directory (env MODELS_DIR)')
    .option('--state-dir <dir>', 'state directory (default .isomodel)');

  program
    .command('serve')
    .description('start the gateway with the models in the models dir')
    .option('-p, --port <port>', 'port (env PORT)')
    .option('-H, --host <host>', 'bind address (default 127.0.0.1)')
    .option('--no-watch', 'do not hot-reload on file changes')
    .action(async (opts: { port?: string; host?: string; watch: boolean }) => {
      const extra: ConfigInput = {};
      if (opts.port) extra.port = Number(opts.port);
      if (opts.host) extra.host = opts.host;
      if (!opts.watch) extra.watch = false;
      const { serveCommand } = await import('./serve.js');
      await serveCommand(await configFrom(program.opts<GlobalOpts>(), extra));
    });

  program
    .command('mcp')
    .description('serve the models as an MCP server on stdin/stdout (logs go to stderr)')
    .option('--no-watch', 'do not hot-reload on file changes')
    .action(async (opts: { watch: boolean }) => {
      // Loaded here: the MCP SDK is large and only this command (and /mcp) needs it.
      const { runMcpStdio } = await import('./mcp.js');
      await runMcpStdio(await configFrom(program.opts<GlobalOpts>(), opts.watch ? {} : { watch: false }));
      process.exit(0);
    });

  program
    .command('ls')
    .description('list models (from the running gateway, else from the models dir)')
    .option('--url <url>', 'gateway URL', defaultUrl())
    .option('--json', 'print JSON')
    .action(async (opts: { url: string; json?: boolean }) => {
      const { listCommand } = await import('./ls.js');
      const out = await listCommand(opts.url, await configLoader(program.opts<GlobalOpts>()));
      process.stdout.write((opts.json ? JSON.stringify(out.rows, null, 2) : out.text) + '\n');
    });

  program
    .command('pull')
    .description(
      "fetch a model package (folder, .tar.gz, http(s) URL, hf:<org>/<repo>[@revision]) into the models dir, or with --for a model's weights",
    )
    .argument(
      '[source]',
      'folder, .tar.gz / .tgz / .tar, http(s) URL of one, or hf:<org>/<repo>[@revision] (HF_ENDPOINT, HF_TOKEN)',
    )
    .option(
      '--for <model>',
      "fill this model's weights (its manifest's weights.env); the source defaults to its weights.source",
    )
    .option('--force', 'replace a package that is already in the models dir')
    .option('--include <glob...>', 'hub sources: only the files matching these globs (e.g. "*.json" "*.safetensors")')
    .option('--json', 'print the result as JSON')
    .action(
      async (
        source: string | undefined,
        opts: { for?: string; force?: boolean; include?: string[]; json?: boolean },
      ) => {
        const { pullCommand, pullSummary } = await import('./pull.js');
        const result = await pullCommand(source, opts, await configFrom(program.opts<GlobalOpts>()));
        process.stdout.write((opts.json ? JSON.stringify(result, null, 2) : pullSummary(result)) + '\n');
      },
    );

  program
    .command('logs')
    .description("a model's replica log files from the running gateway (ISOMODEL_API_KEY: a key with the admin scope)")
    .argument('<model>', 'model name')
    .option('-f, --follow', 'keep printing new lines as the replicas write them')
    .option('-r, --replica <id>', 'one replica (e.g. r3); default: all of them')
    .option('-n, --tail <lines>', 'how many of the last lines (default 100, at most 10000)')
    .option('--url <url>', 'gateway URL', defaultUrl())
    .action(async (model: string, opts: { follow?: boolean; replica?: string; tail?: string; url: string }) => {
      const { logsCommand } = await import('./logs.js');
      await logsCommand(model, opts);
    });

  program
    .command('predict')
    .description(
      'predict one sequence, every sequence of a FASTA / one-per-line file, or one input of another type (text, JSON, a chat message, an image or audio file)',
    )
    .argument('<model>', 'model name')
    .argument('<input>', 'a sequence, text, JSON, or a file path (FASTA, text, JSON, image, audio)')
    .option('-t, --task <task>', 'task_type (needed when the model has several tasks)')
    .option('-o, --option <key=value...>', 'model options (values parsed as JSON when they can be)')
    .option('--url <url>', 'gateway URL', defaultUrl())
    .action(async (model: string, input: string, opts: { task?: string; option?: string[]; url: string }) => {
      const { predictCommand } = await import('./predict.js');
      const results = await predictCommand(
        { model, input, task: opts.task, options: parseOptions(opts.option), url: opts.url },
        await configFrom(program.opts<GlobalOpts>()),
      );
      process.stdout.write(JSON.stringify(results, null, 2) + '\n');
      // Each record that failed is in the output under its id, and said on stderr.
      const failed = results.filter((r) => r.error !== undefined);
      for (const r of failed) process.stderr.write(`record ${r.id}: ${r.error!.code}: ${r.error!.message}\n`);
      if (failed.length) process.exitCode = 1;
    });

  program
    .command('batch')
    .description(
      'run every sequence of a file (FASTA, JSONL, JSON, CSV, TSV) or a folder of exchange files through a model, N workers in parallel',
    )
    .argument('[input]', 'input file (- for stdin)')
    .option('-m, --model <model>', 'model name')
    .option('-s, --service <model>', 'the same as --model (seed 003: batch_process.py --service evo2)')
    .option('-t, --task <task>', 'task (needed when the model has several and the records do not say)')
    .option('--input-dir <dir>', 'folder of input files: one output file each in --output-dir')
    .option(
      '--output-dir <dir>',
      'folder for the output files of --input-dir (default for a folder named input: its sibling output)',
    )
    .option('--output <file>', 'output file, .jsonl or .csv (default: JSONL on stdout)')
    .option(
      '--format <format>',
      'input format: json, jsonl, fasta, csv, tsv, text (default: from the extension, else guessed)',
    )
    .option('--output-format <format>', 'jsonl or csv (default: from the --output extension)')
    .option(
      '-w, --workers <n>',
      "parallel workers: N replicas started here, or 2N chunks in flight on a gateway (default: the model's max_replicas)",
    )
    .option('--chunk-size <n>', 'sequences per model call (default: the model batch size)')
    .option('-o, --option <key=value...>', 'model options (values parsed as JSON when they can be)')
    .option('--organism <name>', 'the organism option for every record (a record may set its own)')
    .option('--url <url>', 'gateway URL (used when it answers)', defaultUrl())
    .option('--offline', 'start the model workers here even when a gateway answers')
    .option('-q, --quiet', 'no progress or summary')
    .action(
      async (input: string | undefined, opts: BatchCliOpts & { model?: string; service?: string; task?: string }) => {
        if (opts.model && opts.service && opts.model !== opts.service)
          throw new Error(
            `--service is another name for --model: give one (got --model ${opts.model} and --service ${opts.service})`,
          );
        const model = opts.model ?? opts.service;
        if (!model) throw new Error('--model (or --service) is required');
        const { batchArgsFrom, batchCommand } = await import('./batch.js');
        await batchCommand(
          { ...batchArgsFrom(input, opts, parseOptions(opts.option)), model, task: opts.task },
          await configFrom(program.opts<GlobalOpts>()),
        );
      },
    );

  const pipeline = program.command('pipeline').description('chained model tasks from a YAML file');
  pipeline
    .command('run')
    .description('run a pipeline over every record of a file or a folder')
    .argument(
      '[file]',
      "pipeline YAML (default: seed 003's generate → optimise → verify, examples/pipelines/generate-optimize-verify.yaml)",
    )
    .option('-i, --input <file>', 'input file (FASTA, JSONL, JSON, CSV, TSV; - for stdin)')
    .option('--input-dir <dir>', 'folder of input files: one output file each in --output-dir')
    .option('--output-dir <dir>', 'folder for the output files of --input-dir')
    .option('--output <file>', 'output file, .jsonl or .csv (default: JSONL on stdout)')
    .option('--format <format>', 'input format (default: from the extension, else guessed)')
    .option('--output-format <format>', 'jsonl or csv')
    .option('-w, --workers <n>', 'parallel workers per step model')
    .option('--chunk-size <n>', 'sequences per model call')
    .option('-o, --option <key=value...>', 'options for every step that declares them')
    .option('--organism <name>', 'the organism option, for every step that declares it')
    .option('--url <url>', 'gateway URL (used when it answers)', defaultUrl())
    .option('--offline', 'start the model workers here even when a gateway answers')
    .option('-q, --quiet', 'no progress or summary')
    .action(async (file: string | undefined, opts: BatchCliOpts & { input?: string }) => {
      const [{ pipelineRunCommand }, { batchArgsFrom }] = await Promise.all([
        import('./pipeline.js'),
        import('./batch.js'),
      ]);
      await pipelineRunCommand(
        file,
        batchArgsFrom(opts.input, opts, parseOptions(opts.option)),
        await configFrom(program.opts<GlobalOpts>()),
      );
    });
  pipeline
    .command('validate')
    .description('check a pipeline file against the models dir')
    .argument('[file]', "pipeline YAML (default: seed 003's generate → optimise → verify)")
    .action(async (file: string | undefined) => {
      const { pipelineValidateCommand } = await import('./pipeline.js');
      process.stdout.write(pipelineValidateCommand(file, await configFrom(program.opts<GlobalOpts>())) + '\n');
    });

  program
    .command('init')
    .description('scaffold a working model package')
    .argument('<name>', 'model name')
    .addOption(new Option('-r, --runtime <runtime>', 'worker runtime').choices(['python', 'node']).default('python'))
    // No choices list here: it would load the manifest schema at start; initPackage names the types.
    .option(
      '-t, --type <type>',
      "the task's input type: sequence, text, json, tensor, image, audio or chat (docs/models.md)",
      'sequence',
    )
    .action(async (name: string, opts: { runtime: 'python' | 'node'; type: string }) => {
      const config = await configFrom(program.opts<GlobalOpts>());
      const { exampleCommand, initPackage } = await import('./init.js');
      const dir = initPackage(name, opts.runtime, config.models_dir, opts.type as Parameters<typeof initPackage>[3]);
      process.stdout.write(
        `created ${dir}\nnext: edit ${dir}/model.yaml, then POST /v1/models/reload (a running gateway picks it up by itself)\n` +
          `try: ${exampleCommand(name, opts.type as Parameters<typeof exampleCommand>[1])}\n`,
      );
    });

  program
    .command('report')
    .description(
      "a running gateway's performance report of one model: latency percentiles, throughput, errors, resources",
    )
    .argument('<model>', 'model name')
    .option('-w, --window <window>', 'how far back: 30s, 15m, 1h, 7d', '1h')
    .addOption(new Option('-f, --format <format>', 'output format').choices(['json', 'html']).default('json'))
    .option('-o, --out <file>', 'write to this file instead of stdout')
    .option('--url <url>', 'gateway URL', defaultUrl())
    .action(async (model: string, opts: { window: string; format: 'json' | 'html'; out?: string; url: string }) => {
      const { reportCommand } = await import('./report.js');
      process.stdout.write(await reportCommand({ model, ...opts }));
    });

  program
    .command('bench')
    .description('drive the same load at a model, or at two side by side (--compare a b), through a running gateway')
    .argument('[model]', 'model to benchmark (model or model@version)')
    .option('--compare <targets...>', 'two targets to compare on the same workload: model or model@version')
    .option('-n, --requests <n>', 'requests per target', '200')
    .option('--concurrency <n>', 'requests in flight at once', '8')
    .option('--warmup <n>', 'unrecorded warm-up requests per target', '5')
    .option('--sequence-file <file>', 'workload: FASTA or one sequence per line (default: generated)')
    .option('--length <n>', 'length of generated sequences', '200')
    .option('-t, --task <task>', "task_type for both targets (default: each model's first task)")
    .option('--timeout <ms>', 'client timeout per request', '60000')
    .option('-o, --out <prefix>', 'write <prefix>.json and <prefix>.html (default: isomodel-bench-<a>-vs-<b>-<time>)')
    .option('--json', 'print JSON instead of the table')
    .option('--url <url>', 'gateway URL', defaultUrl())
    .option('--url-b <url>', 'gateway for the second target (e.g. another instance serving the other version)')
    .action(
      async (
        model: string | undefined,
        opts: {
          compare?: string[];
          requests: string;
          concurrency: string;
          warmup: string;
          sequenceFile?: string;
          length: string;
          task?: string;
          timeout: string;
          out?: string;
          json?: boolean;
          url: string;
          urlB?: string;
        },
      ) => {
        if (opts.compare && (opts.compare.length !== 2 || model))
          throw new Error('--compare takes exactly two targets: isomodel bench --compare a b');
        const targets = opts.compare ?? (model ? [model] : []);
        if (targets.length === 0) throw new Error('name a model, or two with --compare a b');
        const { benchCommand } = await import('./report.js');
        const result = await benchCommand({
          url: opts.url,
          urlB: opts.urlB,
          targets,
          requests: Number(opts.requests),
          concurrency: Number(opts.concurrency),
          warmup: Number(opts.warmup),
          sequenceFile: opts.sequenceFile,
          length: Number(opts.length),
          task: opts.task,
          timeoutMs: Number(opts.timeout),
          out: opts.out,
          json: opts.json,
        });
        process.stdout.write(result.text);
        process.stderr.write(result.notes);
      },
    );

  lazyGroup(program, 'keys', 'manage API keys (stored hashed in the state dir)', async (config) =>
    (await import('./keys.js')).keysCommand(config),
  );
  lazyGroup(program, 'env', 'per-model environments: build, ls, prune', async (config) =>
    (await import('./env.js')).envCommand(config),
  ); // per-model venvs / node_modules
  lazyGroup(program, 'deploy', 'deploy models to an orchestrator', async (config) =>
    (await import('./deploy.js')).deployCommand(config),
  ); // Kubernetes manifests, apply, watch (docs/kubernetes.md)

  program
    .command('doctor')
    .description('check what this machine can run')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const { runDoctor } = await import('./doctor.js');
      const checks = await runDoctor(await configFrom(program.opts<GlobalOpts>()));
      if (opts.json) process.stdout.write(JSON.stringify(checks, null, 2) + '\n');
      else
        for (const c of checks)
          process.stdout.write(`${c.ok ? 'ok  ' : c.required ? 'FAIL' : 'warn'}  ${c.name.padEnd(10)} ${c.detail}\n`);
      if (checks.some((c) => c.required && !c.ok)) process.exitCode = 1;
    });

  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildCli().parseAsync(argv);
  } catch (e) {
    process.stderr.write(`isomodel: ${(e as Error).message}\n`);
    process.exitCode = 1;
  }
}
