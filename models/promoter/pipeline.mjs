// Pre/post-processing for the E. coli promoter ONNX classifier (see MODEL_CARD.md).
import { oneHot } from 'isomodel/encoding';

const LENGTH = 57;

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
    const promoter = Number(p[i * 2 + 1]);
    const cls = promoter >= 0.5 ? 'promoter' : 'non_promoter';
    const out = { prediction: promoter, details: { class: cls, probability: promoter } };
    if (item.options.return_confidence !== false) out.confidence = Math.max(promoter, 1 - promoter);
    return out;
  });
}
