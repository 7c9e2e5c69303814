// Pre/post-processing for the splice-junction ONNX classifier (see MODEL_CARD.md).
import { oneHot } from 'isomodel/encoding';

const LENGTH = 60;
const CLASSES = ['ei', 'ie', 'n'];
const DESCRIPTION = {
  ei: 'exon-intron boundary (donor site)',
  ie: 'intron-exon boundary (acceptor site)',
  n: 'neither',
};

export function preprocess(batch) {
  return {
    onehot: {
      type: 'float32',
      data: oneHot(
        batch.map((i) => i.sequence),
        LENGTH,
      ),
      dims: [batch.length, LENGTH, 4],
    },
  };
}

export function postprocess(outputs, batch) {
  const p = outputs.probabilities.data;
  return batch.map((item, i) => {
    const probs = CLASSES.map((_, k) => Number(p[i * CLASSES.length + k]));
    const best = probs.indexOf(Math.max(...probs));
    const cls = CLASSES[best];
    const out = {
      prediction: cls,
      probabilities: Object.fromEntries(CLASSES.map((c, k) => [c, probs[k]])),
      details: { class: cls, description: DESCRIPTION[cls], probability: probs[best] },
    };
    if (item.options.return_confidence !== false) out.confidence = probs[best];
    return out;
  });
}
