#!/usr/bin/python3
"""Writes the PyTorch reference files that tests/ref/test_reference.c checks gemmnet against.

Run with Debian's python3-torch (the `python3` on PATH may lack torch):

    /usr/bin/python3 tests/ref/gen_reference.py            # rewrites tests/ref/*.safetensors

Each case is a darknet-style cfg. This script reads the cfg itself and runs the same network in
PyTorch (float64, from float32 inputs and parameters), so the cfg text is the single description
both sides build from. One file per group of cases, in safetensors format (written by hand with
struct + json). Per case `<c>`:

  metadata  <c>/cfg, <c>/batch, <c>/train (0/1), <c>/steps, and for SGD <c>/lr, <c>/momentum,
            <c>/decay; the file-wide "cases" is the comma-separated list of cases
  <c>/input, <c>/labels (I32), <c>/targets          what the net is fed (every step)
  <c>/soft_targets                                  mixed targets as gemmnet's loader makes them:
                                                    lam onehot(y) + (1 - lam) onehot(flip(y));
                                                    with metadata <c>/lam
  metadata <c>/label_smoothing                      the loss's label smoothing (training)
  <c>/layers.<i>.<name>                             initial parameters and state, gemmnet's names
                                                    and PyTorch's shapes
  <c>/step<s>.loss                                  shape [1]
  <c>/step<s>.y.<i>                                 output of layer i after forward
  <c>/step<s>.dinput                                dL/d(input)
  <c>/step<s>.grad.layers.<i>.<name>                dL/dW after forward + backward
  <c>/step<s>.state.layers.<i>.<name>               running statistics after that forward
                                                    (in evaluation mode: the initial values)
  <c>/step<s>.update.layers.<i>.<name>              the SGD change -lr*v (when lr): compared on
                                                    its own, as weight decay is small beside w
  <c>/step<s>.param.layers.<i>.<name>               parameters after the SGD update (when lr)

SGD is torch.optim.SGD: v = mu*v + g + wd*w; w -= lr*v, applied to every trainable tensor.

Label smoothing is torch.nn.CrossEntropyLoss(label_smoothing=). With soft_targets, PyTorch is
given timm's Mixup target (timm.data.mixup.mixup_target, written out below: one-hot vectors
with on/off values 1 - e + e/C and e/C, mixed with weight lam), while gemmnet gets the unsmoothed
mix and applies the smoothing itself: the group 'recipe' checks that both agree.
"""
import json
import os
import struct
import sys

import torch
import torch.nn.functional as F

OUT_DIR = os.path.dirname(os.path.abspath(__file__))
torch.set_default_dtype(torch.float64)


# ----------------------------------------------------------------------------------- the cfg

def parse_cfg(text):
    """[(section, {key: value})], [net] included first."""
    secs = []
    for raw in text.splitlines():
        line = raw.split('#')[0].split(';')[0].strip()
        if not line:
            continue
        if line.startswith('['):
            secs.append((line.strip('[]').lower(), {}))
        else:
            k, v = line.split('=', 1)
            secs[-1][1][k.strip()] = v.strip()
    return secs


def act(x, name):
    if name == 'linear':
        return x
    if name == 'relu':
        return F.relu(x)
    if name == 'leaky':
        return F.leaky_relu(x, 0.1)
    if name == 'logistic':
        return torch.sigmoid(x)
    if name == 'tanh':
        return torch.tanh(x)
    raise ValueError(name)


def f32(t):
    """A float32-representable float64 tensor (what gemmnet will be given)."""
    return t.float().double()


class Net:
    """The cfg as a PyTorch graph. Parameters are float64 leaves named as gemmnet names them."""

    def __init__(self, cfg_text, gen):
        self.smoothing = 0.0
        self.soft = None  # soft targets (batch x classes) for the loss, smoothing folded in
        self.secs = parse_cfg(cfg_text)
        net = self.secs[0][1]
        if 'inputs' in net:
            self.in_shape = (int(net['inputs']), 1, 1)
        else:
            self.in_shape = (int(net.get('channels', 3)), int(net['height']), int(net['width']))
        self.layers = self.secs[1:]
        self.params = []  # (layer, name, tensor, trainable)
        shape = self.in_shape
        self.shapes = []
        for i, (sec, kv) in enumerate(self.layers):
            shape = self._plan(i, sec, kv, shape, gen)
            self.shapes.append(shape)

    def _add(self, i, name, t, trainable):
        t = f32(t).requires_grad_(trainable)
        self.params.append((i, name, t, trainable))
        return t

    def p(self, i, name):
        for li, n, t, _ in self.params:
            if li == i and n == name:
                return t
        raise KeyError((i, name))

    def _bn_params(self, i, c, gen, prefix='bn.'):
        self._add(i, prefix + 'weight', 0.5 + torch.rand(c, generator=gen), True)
        self._add(i, prefix + 'bias', 0.4 * torch.rand(c, generator=gen) - 0.2, True)
        self._add(i, prefix + 'running_mean', 0.4 * torch.rand(c, generator=gen) - 0.2, False)
        self._add(i, prefix + 'running_var', 0.5 + torch.rand(c, generator=gen), False)

    def _plan(self, i, sec, kv, shape, gen):
        c, h, w = shape
        if sec == 'convolutional':
            k = int(kv.get('size', 1))
            s = int(kv.get('stride', 1))
            pad = int(kv['padding']) if 'padding' in kv else (k // 2 if int(kv.get('pad', 0)) else 0)
            g = int(kv.get('groups', 1))
            f = int(kv['filters'])
            bound = (3.0 / (c // g * k * k)) ** 0.5
            self._add(i, 'weight', bound * (2 * torch.rand(f, c // g, k, k, generator=gen) - 1), True)
            if int(kv.get('batch_normalize', 0)):
                self._bn_params(i, f, gen)
            else:
                self._add(i, 'bias', 0.2 * torch.rand(f, generator=gen) - 0.1, True)
            return (f, (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1)
        if sec == 'connected':
            n = int(kv['output'])
            fan = c * h * w
            bound = (3.0 / fan) ** 0.5
            self._add(i, 'weight', bound * (2 * torch.rand(n, fan, generator=gen) - 1), True)
            self._add(i, 'bias', 0.2 * torch.rand(n, generator=gen) - 0.1, True)
            return (n, 1, 1)
        if sec == 'batchnorm':
            self._bn_params(i, c, gen)
            return shape
        if sec == 'maxpool':
            k = int(kv['size'])
            s = int(kv.get('stride', k))
            pad = int(kv['padding'])  # the cases always give it: darknet's default is size-1
            return (c, (h + pad - k) // s + 1, (w + pad - k) // s + 1)
        if sec == 'avgpool':
            if 'size' not in kv:
                return (c, 1, 1)
            k = int(kv['size'])
            s = int(kv.get('stride', k))
            pad = int(kv.get('padding', 0))
            return (c, (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1)
        if sec == 'route':
            ins = [self.shapes[j] for j in self._indexes(i, kv['layers'])]
            return (sum(s[0] for s in ins), ins[0][1], ins[0][2])
        if sec in ('shortcut', 'softmax', 'cost', 'activation', 'dropout'):
            return shape
        raise ValueError(sec)

    def forward(self, x, labels, targets, train):
        """Returns (loss, [y_i]); updates running statistics in training mode."""
        ys = []
        loss = None
        for i, (sec, kv) in enumerate(self.layers):
            if sec == 'convolutional':
                k = int(kv.get('size', 1))
                pad = int(kv['padding']) if 'padding' in kv else (k // 2 if int(kv.get('pad', 0)) else 0)
                bn = int(kv.get('batch_normalize', 0))
                y = F.conv2d(x, self.p(i, 'weight'), None if bn else self.p(i, 'bias'),
                             stride=int(kv.get('stride', 1)), padding=pad,
                             groups=int(kv.get('groups', 1)))
                if bn:
                    y = self._bn(i, y, train)
                y = act(y, kv.get('activation', 'logistic'))
            elif sec == 'connected':
                y = act(F.linear(x.flatten(1), self.p(i, 'weight'), self.p(i, 'bias')),
                        kv.get('activation', 'linear'))
                y = y.reshape(y.shape[0], -1, 1, 1)
            elif sec == 'batchnorm':
                y = self._bn(i, x, train)
            elif sec == 'maxpool':
                k = int(kv['size'])
                y = F.max_pool2d(x, k, int(kv.get('stride', k)), int(kv['padding']) // 2)
            elif sec == 'avgpool':
                if 'size' not in kv:
                    y = F.adaptive_avg_pool2d(x, 1)
                else:
                    k = int(kv['size'])
                    # count_include_pad=True: padded positions count as zeros
                    y = F.avg_pool2d(x, k, int(kv.get('stride', k)), int(kv.get('padding', 0)))
            elif sec == 'shortcut':
                j = int(kv['from'])
                j = i + j if j < 0 else j
                y = act(x + ys[j], kv.get('activation', 'linear'))
            elif sec == 'route':
                y = torch.cat([ys[j] for j in self._indexes(i, kv['layers'])], dim=1)
            elif sec == 'activation':
                y = act(x, kv.get('activation', 'linear'))
            elif sec == 'dropout':
                assert not train, 'dropout draws random numbers: evaluation mode only'
                y = x
            elif sec == 'softmax':
                assert int(kv.get('groups', 1)) == 1
                logits = x.flatten(1) / float(kv.get('temperature', 1))
                if self.soft is not None:
                    loss = F.cross_entropy(logits, self.soft)
                else:
                    loss = F.cross_entropy(logits, labels, label_smoothing=self.smoothing)
                y = F.softmax(logits, dim=1).reshape(x.shape)
            elif sec == 'cost':
                assert kv.get('type', 'sse') == 'sse'
                loss = 0.5 * ((x - targets) ** 2).sum() / x.shape[0]
                y = x
            else:
                raise ValueError(sec)
            ys.append(y)
            x = y
        return loss, ys

    @staticmethod
    def _indexes(i, text):
        v = [int(t) for t in text.split(',')]
        return [i + j if j < 0 else j for j in v]

    def _bn(self, i, x, train):
        # F.batch_norm updates the running statistics in place in training mode (momentum 0.1,
        # unbiased variance for the running estimate), as nn.BatchNorm2d does.
        with torch.no_grad():
            rm, rv = self.p(i, 'bn.running_mean'), self.p(i, 'bn.running_var')
        return F.batch_norm(x, rm, rv, self.p(i, 'bn.weight'), self.p(i, 'bn.bias'),
                            training=bool(train), momentum=0.1, eps=1e-5)


# ----------------------------------------------------------------------------------- cases

def mixup_target(labels, n_classes, lam, smoothing):
    """timm.data.mixup.mixup_target: smoothed one-hot targets mixed with the flipped batch's."""
    off = smoothing / n_classes
    on = 1.0 - smoothing + off
    y1 = torch.full((len(labels), n_classes), off).scatter_(1, labels.view(-1, 1), on)
    y2 = torch.full((len(labels), n_classes), off).scatter_(1, labels.flip(0).view(-1, 1), on)
    return y1 * lam + y2 * (1.0 - lam)


def run_case(name, cfg, batch, train=1, steps=1, lr=None, momentum=0.0, decay=0.0, seed=0,
             label_smoothing=0.0, lam=None):
    gen = torch.Generator().manual_seed(seed)
    net = Net(cfg, gen)
    tensors = {}
    meta = {'cfg': cfg, 'batch': str(batch), 'train': str(train), 'steps': str(steps)}
    if label_smoothing:
        meta['label_smoothing'] = repr(label_smoothing)
        net.smoothing = label_smoothing
    if lr is not None:
        meta.update(lr=repr(lr), momentum=repr(momentum), decay=repr(decay))
    x = f32(2 * torch.rand(batch, *net.in_shape, generator=gen) - 1).requires_grad_(True)
    tensors['input'] = x
    out = net.shapes[-1]
    n_classes = out[0] * out[1] * out[2]
    labels = torch.randint(0, n_classes, (batch,), generator=gen)
    last = net.layers[-1][0]
    if last == 'softmax':
        tensors['labels'] = labels.int()
        if lam is not None:
            meta['lam'] = repr(lam)
            tensors['soft_targets'] = mixup_target(labels, n_classes, lam, 0.0)
            net.soft = mixup_target(labels, n_classes, lam, label_smoothing)
    targets = None
    if last == 'cost':
        targets = f32(2 * torch.rand(batch, *out, generator=gen) - 1)
        tensors['targets'] = targets
    for i, n, t, _ in net.params:
        tensors['layers.%d.%s' % (i, n)] = t.detach().clone()
    trainable = [t for _, _, t, tr in net.params if tr]
    opt = None
    if lr is not None:
        opt = torch.optim.SGD(trainable, lr=lr, momentum=momentum, weight_decay=decay)
    for s in range(steps):
        pre = 'step%d.' % s
        for t in trainable:
            t.grad = None
        x.grad = None
        loss, ys = net.forward(x, labels, targets, train)
        loss.backward()
        tensors[pre + 'loss'] = loss.detach().reshape(1)
        for i, y in enumerate(ys):
            if net.layers[i][0] != 'cost':  # the cost layer's output is its input
                tensors[pre + 'y.%d' % i] = y.detach().clone()
        tensors[pre + 'dinput'] = x.grad.clone()
        for i, n, t, tr in net.params:
            if tr:
                tensors[pre + 'grad.layers.%d.%s' % (i, n)] = t.grad.clone()
            else:  # in evaluation mode: unchanged
                tensors[pre + 'state.layers.%d.%s' % (i, n)] = t.detach().clone()
        if opt:
            before = [t.detach().clone() for t in trainable]
            opt.step()
            k = 0
            for i, n, t, tr in net.params:
                if tr:
                    tensors[pre + 'update.layers.%d.%s' % (i, n)] = t.detach() - before[k]
                    tensors[pre + 'param.layers.%d.%s' % (i, n)] = t.detach().clone()
                    k += 1
    return tensors, meta


def connected_cases():
    c = []
    for a in ('linear', 'relu', 'leaky', 'logistic', 'tanh'):
        c.append(('connected_' + a,
                  dict(cfg='[net]\nwidth=5\nheight=4\nchannels=3\n'
                           '[connected]\noutput=7\nactivation=%s\n[cost]\ntype=sse\n' % a,
                       batch=3)))
    c.append(('connected_vector',
              dict(cfg='[net]\ninputs=9\n[connected]\noutput=4\nactivation=tanh\n'
                       '[cost]\ntype=sse\n', batch=5)))
    # Two layers and three SGD steps with momentum and weight decay: checks the update rule.
    c.append(('connected_mlp_sgd',
              dict(cfg='[net]\ninputs=6\n[connected]\noutput=8\nactivation=relu\n'
                       '[connected]\noutput=4\nactivation=linear\n[cost]\ntype=sse\n',
                   batch=4, steps=3, lr=0.1, momentum=0.9, decay=5e-4)))
    return c


def conv_cases():
    def conv(name, c, h, w, body, batch=2, train=1):
        return (name, dict(cfg='[net]\nwidth=%d\nheight=%d\nchannels=%d\n[convolutional]\n%s'
                               '[cost]\ntype=sse\n' % (w, h, c, body), batch=batch, train=train))
    return [
        conv('conv_3x3_s1_p1', 3, 7, 6,
             'filters=4\nsize=3\nstride=1\npad=1\nactivation=leaky\n'),
        conv('conv_3x3_s2_p1', 3, 9, 7,
             'filters=5\nsize=3\nstride=2\npad=1\nactivation=relu\n'),
        conv('conv_3x3_valid', 2, 6, 5,
             'filters=3\nsize=3\nstride=1\npad=0\nactivation=linear\n'),
        conv('conv_1x1_s1', 6, 5, 4,
             'filters=3\nsize=1\nstride=1\npad=1\nactivation=linear\n', batch=3),
        conv('conv_5x5_s2_p2', 2, 11, 10,
             'filters=4\nsize=5\nstride=2\npad=1\nactivation=tanh\n'),
        conv('conv_groups2', 4, 6, 5,
             'filters=6\nsize=3\nstride=1\npad=1\ngroups=2\nactivation=logistic\n'),
        conv('conv_bn_train', 3, 8, 6,
             'filters=4\nsize=3\nstride=1\npad=1\nbatch_normalize=1\nactivation=leaky\n',
             batch=3),
        conv('conv_bn_eval', 3, 8, 6,
             'filters=4\nsize=3\nstride=1\npad=1\nbatch_normalize=1\nactivation=leaky\n',
             batch=3, train=0),
    ]


def batchnorm_cases():
    bn = '[batchnorm]\n[cost]\ntype=sse\n'
    return [
        ('batchnorm_train', dict(cfg='[net]\nwidth=3\nheight=5\nchannels=4\n' + bn, batch=3)),
        ('batchnorm_eval',
         dict(cfg='[net]\nwidth=3\nheight=5\nchannels=4\n' + bn, batch=3, train=0)),
        ('batchnorm_vector_train', dict(cfg='[net]\ninputs=6\n' + bn, batch=8)),
    ]


def pool_cases():
    def pool(name, c, h, w, body, batch=2):
        return (name, dict(cfg='[net]\nwidth=%d\nheight=%d\nchannels=%d\n%s[cost]\ntype=sse\n'
                               % (w, h, c, body), batch=batch))
    return [
        pool('maxpool_2x2_s2', 3, 6, 8, '[maxpool]\nsize=2\nstride=2\npadding=0\n'),
        pool('maxpool_2x2_s2_odd', 2, 7, 5, '[maxpool]\nsize=2\nstride=2\npadding=0\n'),
        pool('maxpool_3x3_s2_p1', 2, 7, 9, '[maxpool]\nsize=3\nstride=2\npadding=2\n'),
        pool('maxpool_3x3_s1_p1', 2, 5, 6, '[maxpool]\nsize=3\nstride=1\npadding=2\n'),
        pool('avgpool_global', 4, 5, 7, '[avgpool]\n', batch=3),
        pool('avgpool_2x2_s2', 3, 6, 8, '[avgpool]\nsize=2\nstride=2\n'),
        pool('avgpool_3x3_s2_p1', 2, 7, 6, '[avgpool]\nsize=3\nstride=2\npadding=1\n'),
    ]


def graph_cases():
    # Layer 0 feeds both the shortcut and a route, so its gradient is a sum of two paths.
    return [
        ('graph_route_shortcut',
         dict(cfg='[net]\nwidth=5\nheight=6\nchannels=2\n'
                  '[activation]\nactivation=tanh\n'
                  '[maxpool]\nsize=3\nstride=1\npadding=2\n'
                  '[shortcut]\nfrom=0\nactivation=leaky\n'
                  '[route]\nlayers=-1,-3\n'
                  '[connected]\noutput=6\nactivation=logistic\n'
                  '[route]\nlayers=4\n'
                  '[softmax]\n', batch=3)),
        ('graph_dropout_eval',
         dict(cfg='[net]\ninputs=8\n[connected]\noutput=6\nactivation=relu\n'
                  '[dropout]\nprobability=0.3\n[connected]\noutput=3\n[cost]\ntype=sse\n',
              batch=4, train=0)),
    ]


def softmax_cases():
    return [
        ('softmax_ce', dict(cfg='[net]\ninputs=7\n[softmax]\n', batch=5)),
        ('connected_softmax',
         dict(cfg='[net]\nwidth=3\nheight=3\nchannels=2\n[connected]\noutput=6\n'
                  'activation=tanh\n[softmax]\n', batch=4)),
    ]


def recipe_cases():
    # Label smoothing on hard labels (an 'e' that is exact in float32: 0.125, 0.25), then
    # mixup/cutmix soft targets with and without smoothing, and two SGD steps on soft targets.
    mlp = ('[net]\nwidth=3\nheight=3\nchannels=2\n[connected]\noutput=6\n'
           'activation=tanh\n[softmax]\n')
    return [
        ('softmax_smooth', dict(cfg='[net]\ninputs=7\n[softmax]\n', batch=5,
                                label_smoothing=0.125)),
        ('connected_softmax_smooth', dict(cfg=mlp, batch=4, label_smoothing=0.25)),
        ('softmax_mixup_smooth', dict(cfg='[net]\ninputs=7\n[softmax]\n', batch=6,
                                      label_smoothing=0.125, lam=0.375)),
        ('softmax_T_mixup', dict(cfg='[net]\ninputs=5\n[softmax]\ntemperature=0.5\n',
                                        batch=3, lam=0.8125)),
        ('connected_softmax_cutmix_sgd',
         dict(cfg=mlp, batch=4, steps=2, lr=0.1, momentum=0.9, decay=5e-4,
              label_smoothing=0.125, lam=0.6875)),
    ]


RESNET_CFG = """[net]
width=16
height=16
channels=3

# 0
[convolutional]
filters=8
size=3
stride=1
pad=1
batch_normalize=1
activation=relu

# 1
[convolutional]
filters=8
size=3
stride=1
pad=1
batch_normalize=1
activation=relu

# 2
[convolutional]
filters=8
size=3
stride=1
pad=1
batch_normalize=1
activation=linear

# 3: adds layer 1
[shortcut]
from=-2
activation=relu

# 4
[convolutional]
filters=16
size=3
stride=2
pad=1
batch_normalize=1
activation=leaky

# 5
[avgpool]

# 6
[connected]
output=5
activation=linear

# 7
[softmax]
"""


def resnet_cases():
    # Two steps, so the second gradients are taken at updated parameters and the second update
    # uses the momentum buffer.
    return [('resnet_sgd', dict(cfg=RESNET_CFG, batch=4, steps=2, lr=0.05, momentum=0.9,
                                decay=5e-4))]


GROUPS = {
    'connected': connected_cases,
    'conv': conv_cases,
    'batchnorm': batchnorm_cases,
    'pool': pool_cases,
    'softmax': softmax_cases,
    'graph': graph_cases,
    'resnet': resnet_cases,
    'recipe': recipe_cases,
}


# ----------------------------------------------------------------------------------- safetensors

def write_safetensors(path, tensors, meta):
    header = {'__metadata__': meta}
    blobs = []
    off = 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        if t.dtype in (torch.int32, torch.int64):
            dtype, fmt, vals = 'I32', '<%di', [int(v) for v in t.flatten().tolist()]
        else:
            dtype, fmt, vals = 'F32', '<%df', t.flatten().tolist()
        blob = struct.pack(fmt % len(vals), *vals)
        header[name] = {'dtype': dtype, 'shape': list(t.shape),
                        'data_offsets': [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)  # pad with spaces so the data starts 8-byte aligned
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def main():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    groups = sys.argv[1:] or list(GROUPS)
    for g in groups:
        tensors, meta = {}, {'format': 'gemmnet-reference-1',
                             'generator': 'tests/ref/gen_reference.py',
                             'torch': torch.__version__}
        names = []
        for k, (name, kw) in enumerate(GROUPS[g]()):
            t, m = run_case(name, seed=1000 + k, **kw)
            names.append(name)
            tensors.update({name + '/' + n: v for n, v in t.items()})
            meta.update({name + '/' + n: v for n, v in m.items()})
            loss = t['step0.loss'].item()
            print('%-12s %-24s loss %.6f  %d tensors' % (g, name, loss, len(t)))
        meta['cases'] = ','.join(names)
        path = os.path.join(OUT_DIR, g + '.safetensors')
        write_safetensors(path, tensors, meta)
        print('wrote %s (%d bytes)' % (path, os.path.getsize(path)))


if __name__ == '__main__':
    main()
