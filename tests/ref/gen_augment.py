#!/usr/bin/python3
"""Writes tests/ref/augment.safetensors, torchvision's output for each RandAugment /
TrivialAugmentWide operation at fixed magnitudes, which tests/data/test_augment.c checks
src/data/augment.c against.

Run with Debian's python3-torchvision (the `python3` on PATH may lack torch):

    /usr/bin/python3 tests/ref/gen_augment.py

Inputs: two 8-bit RGB images of 29x22 (odd, not square): a photo from Debian's darknet package
resized with PIL, and the same photo squeezed into 50..170 (low contrast, for AutoContrast and
Equalize). They are stored in the file, so the C test does not depend on PIL.

Each case applies torchvision.transforms.autoaugment._apply_op (the function RandAugment and
TrivialAugmentWide call) to a uint8 CHW tensor, or F.affine / F.rotate directly. Tensors, all I32
except the magnitudes:

  input<k>            [22, 29, 3]   the inputs, HWC
  c<i>/out            [22, 29, 3]   the output of case i, HWC
  c<i>/mag            [1] F32       the magnitude torchvision's _augmentation_space gives

Metadata: "cases" = the number of cases; per case c<i>/op (torchvision's name, or "affine"),
c<i>/policy ("ra", "ta"; "" for affine), c<i>/bin, c<i>/sign (+1/-1), c<i>/input,
c<i>/interp ("nearest" or "bilinear"), c<i>/fill ("r,g,b" or "" for None), and for affine
c<i>/affine ("angle,tx,ty,shear_x,shear_y").
"""
import json
import os
import struct

import torch
from PIL import Image
import torchvision.transforms.functional as F
from torchvision.transforms import InterpolationMode, RandAugment, TrivialAugmentWide
from torchvision.transforms.autoaugment import _apply_op

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'augment.safetensors')
PHOTO = '/usr/share/darknet/data/dog.jpg'
W, H = 29, 22


def inputs():
    im = Image.open(PHOTO).convert('RGB').resize((W, H), Image.BILINEAR)
    a = torch.tensor(list(im.getdata()), dtype=torch.uint8).view(H, W, 3)
    low = (50 + a.to(torch.float32) * (120.0 / 255.0)).round().to(torch.uint8)
    return [a, low]


def write_safetensors(path, tensors, meta):
    header = {'__metadata__': meta}
    blobs, off = [], 0
    for name, t in tensors.items():
        t = t.contiguous()
        if t.dtype.is_floating_point:
            dtype, fmt, vals = 'F32', '<%df', t.flatten().tolist()
        else:
            dtype, fmt, vals = 'I32', '<%di', [int(v) for v in t.flatten().tolist()]
        blob = struct.pack(fmt % len(vals), *vals)
        header[name] = {'dtype': dtype, 'shape': list(t.shape), 'data_offsets': [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main():
    imgs = inputs()
    chw = [a.permute(2, 0, 1).contiguous() for a in imgs]
    spaces = {'ra': RandAugment()._augmentation_space(31, (H, W)),
              'ta': TrivialAugmentWide()._augmentation_space(31)}
    tensors = {'input%d' % k: imgs[k].to(torch.int32) for k in range(len(imgs))}
    meta = {}
    cases = []
    # every operation of each policy at a middle and the top bin (signed ones: + at the middle,
    # - at the top), on the photo; the photometric ones that look at the histogram also on the
    # low-contrast input
    for pol in ('ra', 'ta'):
        for op, (mags, signed) in spaces[pol].items():
            bins = [0] if mags.ndim == 0 else [9, 30] if pol == 'ra' else [17, 30]
            for j, b in enumerate(bins):
                sign = -1 if signed and j == 1 else 1
                for inp in (0, 1):
                    if inp == 1 and (op not in ('AutoContrast', 'Equalize', 'Contrast', 'Solarize') or j == 1):
                        continue
                    cases.append(dict(op=op, policy=pol, bin=b, sign=sign, input=inp,
                                      interp='nearest', fill=None))
    # bilinear and a fill colour, as RandAugment(interpolation=..., fill=...) would use them
    for op, b in (('Rotate', 30), ('ShearX', 30), ('ShearY', 9), ('TranslateY', 30)):
        cases.append(dict(op=op, policy='ta', bin=b, sign=-1, input=0, interp='bilinear', fill=None))
    for op in ('Rotate', 'ShearY'):
        cases.append(dict(op=op, policy='ta', bin=20, sign=1, input=0, interp='nearest', fill=[10, 200, 30]))
        cases.append(dict(op=op, policy='ta', bin=20, sign=1, input=0, interp='bilinear', fill=[10, 200, 30]))
    # RandomAffine's call (rotation and translation together), and darknet's bilinear rotation
    for ang, tx, ty, interp in ((12.5, 3, -2, 'nearest'), (-7.0, 0, 0, 'bilinear'), (90.0, -5, 4, 'nearest')):
        cases.append(dict(op='affine', policy='', bin=0, sign=1, input=0, interp=interp, fill=None,
                          affine=[ang, tx, ty, 0.0, 0.0]))
    for i, c in enumerate(cases):
        interp = InterpolationMode.NEAREST if c['interp'] == 'nearest' else InterpolationMode.BILINEAR
        img = chw[c['input']]
        fill = [float(v) for v in c['fill']] if c['fill'] else None
        if c['op'] == 'affine':
            ang, tx, ty, sx, sy = c['affine']
            out = F.affine(img, angle=ang, translate=[tx, ty], scale=1.0, shear=[sx, sy],
                           interpolation=interp, fill=fill)
            mag = 0.0
            meta['c%d/affine' % i] = ','.join(repr(float(v)) for v in c['affine'])
        else:
            mags, signed = spaces[c['policy']][c['op']]
            mag = float(mags[c['bin']].item()) if mags.ndim > 0 else 0.0
            mag *= c['sign']
            out = _apply_op(img, c['op'], mag, interpolation=interp, fill=fill)
        tensors['c%d/out' % i] = out.permute(1, 2, 0).to(torch.int32)
        tensors['c%d/mag' % i] = torch.tensor([mag], dtype=torch.float32)
        for k in ('op', 'policy', 'bin', 'sign', 'input', 'interp'):
            meta['c%d/%s' % (i, k)] = str(c[k])
        meta['c%d/fill' % i] = ','.join(str(v) for v in c['fill']) if c['fill'] else ''
    meta['cases'] = str(len(cases))
    meta['generator'] = 'tests/ref/gen_augment.py, torchvision %s' % __import__('torchvision').__version__
    write_safetensors(OUT, tensors, meta)
    print('%s: %d cases' % (OUT, len(cases)))


if __name__ == '__main__':
    main()
