// Seed 003's default pipeline (its scripts/pipeline.py): generate → optimise → verify, the job
// of its three services Evo2, CodonTransformer and Codon Verifier. Here: dna-lm generates (it
// serves Evo2's tasks), codon optimises the codons for the record's organism while keeping out
// the verifier's default restriction sites and long homopolymers, and codon-verifier checks the
// result for that organism. `isomodel pipeline run` without a file runs this definition;
// examples/pipelines/generate-optimize-verify.yaml is the same pipeline as a file to copy.
import type { PipelineInput } from './pipeline.js';

/** The restriction sites codon-verifier checks by default (EcoRI BamHI HindIII XhoI XbaI NotI BsaI BsmBI). */
const DEFAULT_SITES = ['GAATTC', 'GGATCC', 'AAGCTT', 'CTCGAG', 'TCTAGA', 'GCGGCCGC', 'GGTCTC', 'CGTCTC'];

export const DEFAULT_PIPELINE: PipelineInput = {
  name: 'generate-optimize-verify',
  version: '1.0.0',
  description: "seed 003's default pipeline: generate (dna-lm) -> codon optimise (codon) -> verify (codon-verifier)",
  steps: [
    { name: 'generate', model: 'dna-lm', task: 'generate_sequence', options: { total_length: 300 } },
    {
      name: 'optimize',
      model: 'codon',
      task: 'codon_optimize',
      sequence: 'generate.sequence',
      options: { input_type: 'dna', avoid: DEFAULT_SITES, max_homopolymer: 8 },
    },
    {
      name: 'verify',
      model: 'codon-verifier',
      task: 'verify',
      sequence: 'optimize.sequence',
      options_from: { organism: 'optimize.organism' },
    },
  ],
};
