// The long checks run under `npm run test:long`, which CI runs after `npm test`; `npm test` skips
// them, saying where they run. They are the retrain reproductions of splice, digits and langid
// (10-25 s of CPU each; promoter's and textgen's short ones stay in `npm test`) and the suites
// against a real docker engine (a private dockerd, image builds: about a minute of CPU together);
// the hostile-input fuzz also runs longer there (100 requests per route instead of 25).
// The files that use it are the ones package.json's test:long runs: a new one goes on that list.
export const LONG_SKIP: string | false =
  process.env.ISOMODEL_TEST_LONG === '1' ? false : 'a long check: runs under `npm run test:long` (CI runs it)';
