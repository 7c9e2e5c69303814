// Mutation-testing groups (stryker.config.mjs): what each mutates, and the test files
// (dist/test/<name>.test.js) that must kill its mutants. Keep each group's tests fast: they run
// once per mutant. The `*-gateway` groups mutate the same modules through the gateway-level tests
// (a real gateway and workers: 30 to 150 s a run, hours a group); the others use unit-level tests
// that run in a few seconds.
export const GROUPS = {
  validation: {
    mutate: ['src/validation/sequence.ts', 'src/validation/fasta.ts', 'src/validation/zod-message.ts'],
    tests: ['sequence'],
  },
  inputs: { mutate: ['src/validation/inputs/**/*.ts'], tests: ['inputs-unit'] },
  envelope: { mutate: ['src/api/envelope.ts'], tests: ['envelope'] },
  metrics: { mutate: ['src/telemetry/prometheus.ts', 'src/telemetry/bound-metrics.ts'], tests: ['metrics'] },
  'security-core': {
    mutate: [
      'src/security/route-scope.ts',
      'src/security/failure-limiter.ts',
      'src/security/keys.ts',
      'src/security/audit.ts',
      'src/security/auth.ts',
    ],
    tests: ['security-unit'],
  },
  'scheduler-core': {
    mutate: [
      'src/scheduler/traffic.ts',
      'src/scheduler/versions.ts',
      'src/scheduler/placement.ts',
      'src/scheduler/request-queue.ts',
      'src/scheduler/cancel.ts',
      'src/scheduler/traffic-store.ts',
    ],
    tests: ['scheduler-unit'],
  },
  'jobs-core': { mutate: ['src/jobs/formats.ts', 'src/jobs/counted.ts'], tests: ['jobs-unit'] },
  'jobs-runner': { mutate: ['src/jobs/runner.ts', 'src/jobs/view.ts'], tests: ['runner-unit'] },
  'scheduler-deployment': {
    mutate: ['src/scheduler/deployment.ts', 'src/scheduler/replica-pool.ts'],
    tests: ['deployment-unit'],
  },
  'scheduler-registry': { mutate: ['src/scheduler/registry*.ts'], tests: ['registry-unit', 'registry-traffic-unit'] },
  'scheduler-containers': { mutate: ['src/scheduler/containers.ts'], tests: ['containers-unit'] },
  'scheduler-stats': { mutate: ['src/scheduler/model-stats.ts'], tests: ['model-stats-unit'] },
  'security-network': { mutate: ['src/security/network.ts'], tests: ['security-unit'] },
  'scheduler-deployment-sync': { mutate: ['src/scheduler/deployment-sync.ts'], tests: ['deployment-sync-unit'] },
  'inputs-gateway': { mutate: ['src/validation/inputs/**/*.ts'], tests: ['inputs'] },
  security: { mutate: ['src/security/**/*.ts'], tests: ['auth', 'route-auth'] },
  scheduler: { mutate: ['src/scheduler/**/*.ts'], tests: ['scheduler', 'batching', 'deployments', 'scaling'] },
  jobs: { mutate: ['src/jobs/runner.ts'], tests: ['jobs-api', 'jobs-formats'] },
};
