#!/usr/bin/python3
"""Writes tests/ref/optim.safetensors: what PyTorch's optimizers, gradient clipping, EMA update
and linear warm-up do on fixed tensors, for tests/train/test_optim.c.

Run with Debian's python3-torch (the `python3` on PATH may lack torch):

    /usr/bin/python3 tests/ref/gen_optim.py

The tensors are named and shaped as gemmnet names the parameters of NET_CFG (the C test builds
that net and looks every tensor up by name). Everything runs in float32, as gemmnet does.

Optimizer cases `<c>` (metadata <c>/optimizer, lrs, momentum, nesterov, decay, norm_decay,
bias_decay, beta1, beta2, eps, amsgrad, clip, frozen (layer list), lr_mult (one per layer)):
  <c>/init.<param>             parameters before the first step
  <c>/step<s>.grad.<param>     the gradient given at step s (0-based)
  <c>/step<s>.norm             clip_grad_norm_'s total norm (when clip > 0), shape [1]
  <c>/step<s>.param.<param>    parameters after step s
  <c>/state.<buf>.<param>      the optimizer's state after the last step (momentum_buffer as
                               `momentum`, exp_avg, exp_avg_sq, max_exp_avg_sq)
Parameter groups as gemmnet forms them: lr * lr_mult of the layer; weight decay norm_decay for
batch-norm weights, bias_decay for biases ("bias", "bn.bias"), decay otherwise; frozen layers'
parameters are not given to the optimizer at all.

EMA cases (timm's ModelEmaV2 update, ema = d*ema + (1-d)*x, d = min(decay, (1+n)/(10+n)) with
warm-up, over parameters and running statistics, every `every` steps):
  <c>/init.<tensor>, <c>/step<s>.model.<tensor>, <c>/step<s>.ema.<tensor>

Warm-up: warmup/lrs [12]: LinearLR(start_factor=0.1, total_iters=5) chained with
CosineAnnealingLR(T_max=12) from lr 0.1 (ChainedScheduler), the lr of iterations 0..11.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_reference import write_safetensors  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'optim.safetensors')

NET_CFG = """[net]
batch=2
width=3
height=3
channels=2
[convolutional]
filters=4
size=3
pad=1
batch_normalize=1
activation=relu
[convolutional]
filters=4
size=3
pad=1
batch_normalize=1
activation=relu
[connected]
output=3
[softmax]
"""

# gemmnet's parameters of NET_CFG: (name, shape, trainable)
PARAMS = [
    ('layers.0.weight', [4, 2, 3, 3], 1), ('layers.0.bn.weight', [4], 1),
    ('layers.0.bn.bias', [4], 1), ('layers.0.bn.running_mean', [4], 0),
    ('layers.0.bn.running_var', [4], 0),
    ('layers.1.weight', [4, 4, 3, 3], 1), ('layers.1.bn.weight', [4], 1),
    ('layers.1.bn.bias', [4], 1), ('layers.1.bn.running_mean', [4], 0),
    ('layers.1.bn.running_var', [4], 0),
    ('layers.2.weight', [3, 36], 1), ('layers.2.bias', [3], 1),
]
N_LAYERS = 3
STEPS = 3


def layer_of(name):
    return int(name.split('.')[1])


def kind_decay(name, decay, norm_decay, bias_decay):
    local = name.split('.', 2)[2]
    if local == 'bias' or local.endswith('.bias'):
        return bias_decay
    if local.startswith('bn.'):
        return norm_decay
    return decay


def optim_case(name, gen, optimizer, lrs, momentum=0.0, nesterov=0, decay=0.0, norm_decay=None,
               bias_decay=None, beta1=0.9, beta2=0.999, eps=1e-8, amsgrad=0, clip=0.0,
               frozen=(), lr_mult=(1.0, 1.0, 1.0)):
    norm_decay = decay if norm_decay is None else norm_decay
    bias_decay = decay if bias_decay is None else bias_decay
    t, meta = {}, {}
    params = {}
    for n, shape, trainable in PARAMS:
        if not trainable:
            continue
        p = torch.randn(shape, generator=gen, dtype=torch.float32)
        if n.endswith('bn.weight'):
            p = 1 + 0.1 * p
        params[n] = p.requires_grad_(layer_of(n) not in frozen)
        t['init.' + n] = p.detach().clone()
    live = [n for n in params if layer_of(n) not in frozen]
    groups = [{'params': [params[n]], 'lr': lrs[0] * lr_mult[layer_of(n)],
               'weight_decay': kind_decay(n, decay, norm_decay, bias_decay), 'name': n}
              for n in live]
    if optimizer == 'sgd':
        opt = torch.optim.SGD(groups, lr=lrs[0], momentum=momentum, nesterov=bool(nesterov))
    else:
        opt = torch.optim.AdamW(groups, lr=lrs[0], betas=(beta1, beta2), eps=eps,
                                amsgrad=bool(amsgrad))
    for s in range(STEPS):
        for n, p in params.items():
            g = 0.5 * torch.randn(p.shape, generator=gen, dtype=torch.float32)
            t['step%d.grad.%s' % (s, n)] = g.clone()
            if p.requires_grad:
                p.grad = g
        if clip > 0:
            norm = torch.nn.utils.clip_grad_norm_([params[n] for n in live], clip)
            t['step%d.norm' % s] = norm.reshape(1).float()
        for grp in opt.param_groups:
            grp['lr'] = lrs[s] * lr_mult[layer_of(grp['name'])]
        opt.step()
        for n, p in params.items():
            t['step%d.param.%s' % (s, n)] = p.detach().clone()
    for n in live:
        st = opt.state[params[n]]
        for buf in ('momentum_buffer', 'exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'):
            if buf in st and st[buf] is not None:
                key = 'momentum' if buf == 'momentum_buffer' else buf
                t['state.%s.%s' % (key, n)] = st[buf].clone()
    meta.update({'optimizer': optimizer, 'lrs': ','.join(repr(x) for x in lrs),
                 'momentum': repr(momentum), 'nesterov': str(nesterov), 'decay': repr(decay),
                 'norm_decay': repr(norm_decay), 'bias_decay': repr(bias_decay),
                 'beta1': repr(beta1), 'beta2': repr(beta2), 'eps': repr(eps),
                 'amsgrad': str(amsgrad), 'clip': repr(clip),
                 'frozen': ','.join(str(x) for x in frozen),
                 'lr_mult': ','.join(repr(x) for x in lr_mult), 'steps': str(STEPS),
                 'kind': 'optim'})
    return t, meta


def ema_case(name, gen, decay, every, warmup, steps=5):
    t = {}
    model = {n: torch.randn(shape, generator=gen, dtype=torch.float32)
             for n, shape, _ in PARAMS}
    for n, v in model.items():
        t['init.' + n] = v.clone()
    ema = {n: v.clone() for n, v in model.items()}
    updates = 0
    for s in range(steps):
        for n in model:  # the weights after optimizer step s+1
            model[n] = model[n] + 0.3 * torch.randn(model[n].shape, generator=gen,
                                                    dtype=torch.float32)
            t['step%d.model.%s' % (s, n)] = model[n].clone()
        if (s + 1) % every == 0:
            d = min(decay, (1 + updates) / (10 + updates)) if warmup else decay
            with torch.no_grad():
                for n in ema:  # timm ModelEmaV2: decay * e + (1. - decay) * m
                    ema[n] = d * ema[n] + (1. - d) * model[n]
            updates += 1
        for n in ema:
            t['step%d.ema.%s' % (s, n)] = ema[n].clone()
    meta = {'kind': 'ema', 'decay': repr(decay), 'every': str(every), 'warmup': str(warmup),
            'steps': str(steps)}
    return t, meta


def warmup_lrs():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    sched = torch.optim.lr_scheduler.ChainedScheduler([
        torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=5),
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=12)])
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]['lr'])
        opt.step()
        sched.step()
    return torch.tensor(lrs, dtype=torch.float64)


CASES = [
    ('sgd', dict(optimizer='sgd', lrs=[0.1, 0.05, 0.02], momentum=0.9, decay=0.05)),
    ('sgd_groups', dict(optimizer='sgd', lrs=[0.1, 0.05, 0.02], momentum=0.9, nesterov=1,
                        decay=0.05, norm_decay=0.0, bias_decay=0.0, frozen=(0,),
                        lr_mult=(1.0, 1.0, 0.1))),
    ('sgd_clip', dict(optimizer='sgd', lrs=[0.1, 0.05, 0.02], momentum=0.9, decay=0.01,
                      clip=1.0)),
    ('adamw', dict(optimizer='adamw', lrs=[1e-2, 5e-3, 2e-3], decay=0.01)),
    ('amsgrad', dict(optimizer='adamw', lrs=[1e-2, 1e-2, 1e-2], decay=0.05, beta1=0.8,
                     beta2=0.99, eps=1e-6, amsgrad=1)),
    ('adamw_groups', dict(optimizer='adamw', lrs=[1e-2, 5e-3, 2e-3], decay=0.1, norm_decay=0.0,
                          bias_decay=0.02, frozen=(1,), lr_mult=(0.5, 1.0, 2.0))),
    ('adamw_clip', dict(optimizer='adamw', lrs=[1e-2, 5e-3, 2e-3], decay=0.01, clip=0.8,
                        frozen=(0,))),
]
EMA_CASES = [
    ('ema_warmup', dict(decay=0.99, every=1, warmup=1)),
    ('ema_every2', dict(decay=0.9, every=2, warmup=0)),
]


def main():
    torch.manual_seed(0)
    tensors, meta = {}, {'format': 'gemmnet-reference-1', 'generator': 'tests/ref/gen_optim.py',
                         'torch': torch.__version__, 'cfg': NET_CFG}
    names = []
    for k, (name, kw) in enumerate(CASES):
        gen = torch.Generator().manual_seed(2000 + k)
        t, m = optim_case(name, gen, **kw)
        names.append(name)
        tensors.update({name + '/' + n: v for n, v in t.items()})
        meta.update({name + '/' + n: v for n, v in m.items()})
    for k, (name, kw) in enumerate(EMA_CASES):
        gen = torch.Generator().manual_seed(3000 + k)
        t, m = ema_case(name, gen, **kw)
        names.append(name)
        tensors.update({name + '/' + n: v for n, v in t.items()})
        meta.update({name + '/' + n: v for n, v in m.items()})
    tensors['warmup/lrs'] = warmup_lrs()
    meta['cases'] = ','.join(names)
    write_safetensors(OUT, tensors, meta)
    print('wrote %s (%d bytes, %d tensors)' % (OUT, os.path.getsize(OUT), len(tensors)))


if __name__ == '__main__':
    main()
