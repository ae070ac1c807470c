"""Make the ONNX examples with PyTorch's exporter (kept so they can be remade).

    python examples/onnx/make_onnx_examples.py

Needs torch, onnx and onnxscript (not bpc's dependencies; a separate virtualenv
will do: ``pip install torch==2.13.0 onnx onnxscript``). Writes, next to this
script:

* ``mlp_2_10_10_1.onnx``: the 2-10-10-1 sigmoid MLP with a linear output,
  batch 1 (the twin of ``examples/mlp_2_10_10_1.json``);
* ``mnist_mlp.onnx``: the 784-256-256-10 ReLU MLP with a symbolic batch (the
  twin of ``examples/mnist_mlp.json``).

Weights are PyTorch's default initialisation under ``torch.manual_seed(0)``,
stored as float32 (what PyTorch trains in; the MNIST file is about 1 MB). The
models output the prediction (logits); the loss is chosen at compile time
(``bpc compile ... --loss sse`` / ``--loss softmax_cross_entropy``).
"""

from pathlib import Path

import onnx
import torch
from torch import nn

HERE = Path(__file__).resolve().parent


class MLP(nn.Module):
    def __init__(self, sizes, activation):
        super().__init__()
        layers = []
        for k in range(1, len(sizes)):
            layers.append(nn.Linear(sizes[k - 1], sizes[k]))
            if k < len(sizes) - 1:
                layers.append(activation())
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def export(model, example, path, dynamic_batch):
    model.eval()
    kwargs = {"dynamic_shapes": ({0: torch.export.Dim("batch")},)} if dynamic_batch else {}
    torch.onnx.export(
        model, (example,), str(path), input_names=["x"], output_names=["prediction"],
        opset_version=18, dynamo=True, external_data=False, optimize=True, **kwargs,
    )
    m = onnx.load(str(path))
    m.producer_version = torch.__version__.split("+")[0]
    m.doc_string = model.__doc__ or ""
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    ops = sorted({n.op_type for n in m.graph.node})
    print(f"wrote {path.name}: {path.stat().st_size:,} bytes, ops {ops}")


def main():
    torch.manual_seed(0)
    small = MLP([2, 10, 10, 1], nn.Sigmoid)
    small.__doc__ = "A 2-10-10-1 sigmoid MLP with a linear output (the twin of examples/mlp_2_10_10_1.json)."
    export(small, torch.randn(1, 2), HERE / "mlp_2_10_10_1.onnx", dynamic_batch=False)
    torch.manual_seed(0)
    mnist = MLP([784, 256, 256, 10], nn.ReLU)
    mnist.__doc__ = "A 784-256-256-10 ReLU MLP for MNIST (the twin of examples/mnist_mlp.json)."
    export(mnist, torch.randn(2, 784), HERE / "mnist_mlp.onnx", dynamic_batch=True)


if __name__ == "__main__":
    main()
