// Mutation-testing groups (stryker.config.mjs): what each mutates, and the test files
// (dist/test/<name>.test.js) that must kill its mutants. Keep each group's tests fast: they run
// once per mutant.
export const GROUPS = {
  validation: { mutate: ['src/validation/sequence.ts', 'src/validation/fasta.ts', 'src/validation/zod-message.ts'], tests: ['sequence'] },
  inputs: { mutate: ['src/validation/inputs/**/*.ts'], tests: ['inputs'] },
  envelope: { mutate: ['src/api/envelope.ts'], tests: ['envelope'] },
  metrics: { mutate: ['src/telemetry/prometheus.ts', 'src/telemetry/bound-metrics.ts'], tests: ['metrics'] },
  security: { mutate: ['src/security/**/*.ts'], tests: ['auth', 'route-auth'] },
  scheduler: { mutate: ['src/scheduler/**/*.ts'], tests: ['scheduler', 'batching', 'deployments', 'scaling'] },
  jobs: { mutate: ['src/jobs/runner.ts'], tests: ['jobs-api', 'jobs-formats'] },
};
