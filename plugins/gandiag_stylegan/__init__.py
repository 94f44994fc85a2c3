"""StyleGAN-family network pickles and BigGAN-style generators, an ordinary entry-point plugin.

Reads, only with ``--trust-checkpoint`` (both are pickles of code):

- NVlabs network pickles of StyleGAN2-ADA, StyleGAN3 and StyleGAN-XL (``.pkl``):
  a pickled dict with ``G_ema`` (and ``G``, ``D``, ``augment_pipe``,
  ``training_set_kwargs``). Their networks are ``torch_utils.persistence``
  classes: each one pickles the *source code* of its module and is rebuilt by
  ``_reconstruct_persistent_obj``, which ``exec``s that source. Unpickling
  imports NVlabs' ``torch_utils`` and ``dnnlib`` (not on PyPI), found through
  ``--generator-path`` (a clone of stylegan2-ada-pytorch or stylegan3). G is
  called ``G(z, c, truncation_psi=psi, noise_mode='const')`` and returns NCHW
  images in [-1, 1]; ``--truncation-psi`` (default 1: none) is recorded in the
  results' generator section.
- a whole BigGAN-style module (pytorch-pretrained-BigGAN's ``BigGAN``, saved with
  ``torch.save(model)`` or pickled): ``config.z_dim``, ``config.num_classes`` and
  ``forward(z, class_onehot, truncation)``. Latents follow that package's
  ``truncated_noise_sample``: a normal truncated to [-2, 2], times psi.

The files are recognised without running them: the pickle's opcodes are read
with :mod:`pickletools` for the modules it imports. TensorFlow StyleGAN pickles
(``dnnlib.tflib``) are refused with the command that converts them.
"""

from __future__ import annotations

import inspect
import io
import math
import pickle
import pickletools
import warnings
import zipfile
from pathlib import Path

import torch

from gandiag import CheckpointError, GandiagError, GeneratorContract, GeneratorOutputError, LoadedGenerator, hookimpl
from gandiag.generator.user_code import check_paths, importable
from gandiag.safety.files import open_regular
from gandiag.safety.untrusted import shown, untrusted

__version__ = "0.1.0"
HEAD = 1 << 20  # how much of a pickle sniff reads for the modules it imports
PERSISTENCE = "torch_utils.persistence"  # NVlabs' persistent classes: StyleGAN2-ADA, StyleGAN3, StyleGAN-XL
TF_NETWORK = "dnnlib.tflib"  # StyleGAN / StyleGAN2 TensorFlow pickles
BIGGAN = "pytorch_pretrained_biggan"
NVLABS_PACKAGES = ("torch_utils", "dnnlib")
PACKAGE_HINTS = {  # modules NVlabs' code imports that a current environment may lack
    "pkg_resources": "StyleGAN3's torch_utils imports it: pip install 'setuptools<=80.9'",
    BIGGAN: "pip install pytorch-pretrained-biggan, or pass --generator-path DIR for the folder holding it",
}
NVLABS_HINT = ("pass --generator-path DIR of a clone of stylegan2-ada-pytorch or stylegan3 "
               "(of stylegan-xl for its pickles)")


# ----------------------------------------------------------------------------- recognising a file, running nothing

def _pickle_head(f) -> bytes:
    """The first MiB of an open file's pickle: the file itself, or a ``torch.save`` zip's ``data.pkl``."""
    try:
        f.seek(0)
        with zipfile.ZipFile(f) as z:
            member = next((n for n in z.namelist() if n.endswith("data.pkl")), None)
            if member is None:
                return b""
            with z.open(member) as pickled:  # not ``f``: the fallback below reads the file itself
                return pickled.read(HEAD)
    except zipfile.BadZipFile:
        pass
    except Exception:  # hostile zips raise many types; such a file is not ours
        return b""
    f.seek(0)
    return f.read(HEAD)


def pickle_globals(data: bytes) -> list:
    """Every ``module.name`` global a pickle names in ``data``, read opcode by opcode, nothing run.

    A cut at ``HEAD`` ends the scan (genops raises on the partial opcode): the
    globals that identify these files come in their first few hundred bytes.
    """
    found, strings = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # STRING opcodes go through codecs.escape_decode, which can warn
        try:
            for op, arg, _ in pickletools.genops(io.BytesIO(data)):
                if op.name in ("GLOBAL", "INST"):
                    found.append(str(arg).replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(f"{strings[-2]}.{strings[-1]}")
                elif isinstance(arg, str):
                    strings.append(arg)
        except Exception:
            pass
    return found


def family(globals_: list):
    """Which family a pickle's globals say it is: "stylegan", "stylegan-tf", "biggan", or None."""
    if any(g.startswith(TF_NETWORK + ".") for g in globals_):
        return "stylegan-tf"
    if any(g.startswith(PERSISTENCE + ".") for g in globals_):
        return "stylegan"
    if any(g.split(".")[0] == BIGGAN for g in globals_):
        return "biggan"
    return None


def _first(globals_: list, prefix: str) -> str:
    """The first global under ``prefix``, shown safely: the refusal names what it found."""
    return shown(next(g for g in globals_ if g == prefix or g.startswith(prefix + ".")))


# ----------------------------------------------------------------------------- unpickling, trusted only

def _unpickle(f, path: Path, options):
    """The open file's object, unpickled with ``--generator-path`` importable; a missing package is one line."""
    check_paths(options.generator_path)
    with importable(options.generator_path):
        try:
            zipped = zipfile.is_zipfile(f)
            f.seek(0)
            if zipped:
                return torch.load(f, map_location="cpu", weights_only=False)
            return pickle.load(f)
        except ModuleNotFoundError as exc:
            top = (exc.name or "").split(".")[0]
            looked = f"; --generator-path {' '.join(options.generator_path)} lacks it" if options.generator_path else ""
            if top in NVLABS_PACKAGES:
                raise CheckpointError(f"{path}: a StyleGAN network pickle needs NVlabs' code (no module {exc.name!r}"
                                      f"{looked}): {NVLABS_HINT}") from None
            hint = PACKAGE_HINTS.get(top, "install it, or pass --generator-path DIR for the folder holding it")
            raise CheckpointError(f"{path}: the pickle needs code that is not importable (no module "
                                  f"{shown(exc.name)!r}{looked}): {hint}") from None
        except Exception as exc:
            raise CheckpointError(f"{path}: cannot unpickle ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return shown(f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__, 240)


def _psi(options, low: float = -math.inf, high: float = math.inf) -> tuple:
    """(psi, how it was decided): ``--truncation-psi``, else 1 (no truncation), checked against the family's range."""
    if options.truncation_psi is None:
        return 1.0, "default"
    psi = float(options.truncation_psi)
    if not (math.isfinite(psi) and low < psi <= high):
        raise GandiagError(f"--truncation-psi {options.truncation_psi}: must be a finite number"
                           + (f" in ({low:g}, {high:g}]" if math.isfinite(low) else ""))
    return psi, "flag"


def _runner(call, path, paths):
    """``forward(z, labels)`` around ``call``: the user's packages importable, a failure one line naming the file."""
    def forward(z, labels=None):
        with importable(paths):  # a network may import NVlabs' modules lazily, at its first call
            try:
                return call(z, labels)
            except GandiagError:
                raise
            except Exception as exc:
                raise GeneratorOutputError(f"{path}: the generator failed on a batch of {z.shape[0]}: "
                                           f"{_first_line(exc)}") from None
    return forward


def _images_contract(z_dim: int, num_classes: int) -> GeneratorContract:
    """Everything the file says: latent size, one-hot classes, NCHW images in [-1, 1]."""
    fields = ["latent_dim", "latent_dist", "num_classes", "kind", "layout", "output_range"]
    if num_classes:
        fields.append("label_format")
    return GeneratorContract(latent_dim=z_dim, num_classes=num_classes, kind="images", layout="NCHW",
                             output_range="-1,1", label_format="onehot" if num_classes else "index",
                             decided={k: "file" for k in fields}).validate()


# ----------------------------------------------------------------------------- StyleGAN

STYLEGAN_ATTRS = ("z_dim", "c_dim", "img_resolution", "img_channels")


def _pick_stylegan(obj, path, use_ema: bool) -> tuple:
    """(network name, G): ``G_ema`` unless ``--no-ema`` (then ``G``), or the pickled generator itself."""
    if isinstance(obj, torch.nn.Module):
        return type(obj).__name__, obj
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: unpickled a {type(obj).__name__}, not a StyleGAN network pickle "
                              "(a dict with G_ema)")
    order = ("G_ema", "G") if use_ema else ("G", "G_ema")
    name = next((k for k in order if isinstance(obj.get(k), torch.nn.Module)), None)
    if name is None:
        keys = ", ".join(shown(repr(k), 40) for k in list(obj)[:8])
        raise CheckpointError(f"{path}: a network pickle without a generator: no G_ema or G module (keys: {keys})")
    return name, obj[name]


def _stylegan_sizes(G, path, name) -> dict:
    """z_dim, c_dim, img_resolution, img_channels: integers, else this is not a StyleGAN generator."""
    sizes = {a: getattr(G, a, None) for a in STYLEGAN_ATTRS}
    bad = [a for a, v in sizes.items() if not isinstance(v, int) or isinstance(v, bool) or v < 0]
    if bad or sizes["z_dim"] < 1:
        raise CheckpointError(f"{path}: {name} ({type(G).__name__}) is not a StyleGAN generator: it lacks integer "
                              f"{', '.join(bad or ['z_dim'])}")
    return sizes


def load_stylegan(path, options, obj, psi: tuple) -> LoadedGenerator:
    """A StyleGAN2-ADA / StyleGAN3 / StyleGAN-XL generator: ``G(z, c, truncation_psi, noise_mode='const')``.

    Constant noise makes a sample depend on its latent alone (gandiag's
    reproducibility); NVlabs' own metrics draw random noise per image.
    """
    name, G = _pick_stylegan(obj, path, options.use_ema)
    sizes = _stylegan_sizes(G, path, name)
    psi, psi_from = psi
    G = G.to(options.device).eval().requires_grad_(False)
    c_dim = sizes["c_dim"]

    def call(z, labels):
        c = labels if labels is not None else z.new_zeros(z.shape[0], c_dim)
        return G(z, c, truncation_psi=psi, noise_mode="const")

    meta = {"family": "stylegan", "network": name, "class": type(G).__name__, **sizes,
            "truncation_psi": psi, "truncation_psi_from": psi_from, "noise_mode": "const"}
    return LoadedGenerator(_runner(call, path, options.generator_path), _images_contract(sizes["z_dim"], c_dim),
                           "stylegan-pkl", str(path), module=G, meta=meta, takes_labels=c_dim > 0)


# ----------------------------------------------------------------------------- BigGAN-style

def _biggan_sizes(module, path) -> dict:
    """``config.z_dim``, ``config.num_classes`` and ``forward(z, class_onehot, truncation)``, or one line why not."""
    cfg = getattr(module, "config", None)
    sizes = {a: getattr(cfg, a, None) for a in ("z_dim", "num_classes", "output_dim")}
    try:
        params = list(inspect.signature(module.forward).parameters)
    except (TypeError, ValueError):
        params = []
    ok = all(isinstance(sizes[a], int) and sizes[a] > 0 for a in ("z_dim", "num_classes"))
    if not (ok and len(params) == 3 and params[2] == "truncation"):
        raise CheckpointError(
            f"{path}: {type(module).__name__} is not a BigGAN-style module (config.z_dim, config.num_classes, "
            f"forward(z, class_onehot, truncation)); evaluate it with --generator-class (docs/loaders-and-export.md)")
    return sizes


def truncated_normal(z: torch.Tensor, psi: float, bound: float = 2.0) -> torch.Tensor:
    """gandiag's normal draws mapped to psi × N(0, 1) truncated to [-bound, bound], by the inverse CDF.

    A per-value function of the draw, so sample i keeps its latent whatever
    the batch; the same distribution as pytorch-pretrained-BigGAN's
    ``truncated_noise_sample(truncation=psi)``.
    """
    x = z.double()
    lo, hi = torch.special.ndtr(torch.tensor([-bound, bound], dtype=x.dtype, device=x.device))
    u = lo + torch.special.ndtr(x) * (hi - lo)
    return (psi * torch.special.ndtri(u)).to(z.dtype)


def load_biggan(path, options, module, psi: tuple) -> LoadedGenerator:
    """A BigGAN-style module: ``forward(truncated_normal(z, psi), class_onehot, psi)``, psi in (0, 1]."""
    if not isinstance(module, torch.nn.Module):
        raise CheckpointError(f"{path}: unpickled a {type(module).__name__}, not a BigGAN-style torch.nn.Module")
    sizes = _biggan_sizes(module, path)
    psi, psi_from = psi
    module = module.to(options.device).eval().requires_grad_(False)

    def call(z, labels):
        return module(truncated_normal(z, psi), labels, psi)

    meta = {"family": "biggan", "class": type(module).__name__, **sizes, "truncation_psi": psi,
            "truncation_psi_from": psi_from, "latent": "normal truncated to [-2, 2], times truncation_psi"}
    return LoadedGenerator(_runner(call, path, options.generator_path),
                           _images_contract(sizes["z_dim"], sizes["num_classes"]), "biggan-module", str(path),
                           module=module, meta=meta, takes_labels=True)


# ----------------------------------------------------------------------------- the loader

class StyleGANLoader:
    name = "stylegan"
    description = ("StyleGAN2-ADA / StyleGAN3 / StyleGAN-XL network pickles, whole BigGAN-style modules "
                   "(pytorch-pretrained-BigGAN); --trust-checkpoint only")

    def sniff(self, path: Path) -> bool:
        """Only pickles that import NVlabs' persistence or TensorFlow networks, or pytorch_pretrained_biggan."""
        if not path.is_file():  # never open a FIFO or a device
            return False
        with open(path, "rb") as f:
            return family(pickle_globals(_pickle_head(f))) is not None

    def load(self, path: Path, options) -> LoadedGenerator:
        with open_regular(path, "a checkpoint", CheckpointError) as f:  # one open file for the check and the load
            return self._load(f, path, options)

    def _load(self, f, path: Path, options) -> LoadedGenerator:
        globals_ = pickle_globals(_pickle_head(f))
        kind = family(globals_)
        if kind == "stylegan-tf":
            raise CheckpointError(f"{path}: a TensorFlow StyleGAN pickle (global {_first(globals_, TF_NETWORK)}); "
                                  "convert it with NVlabs' stylegan2-ada-pytorch: python legacy.py --source IN.pkl "
                                  "--dest OUT.pkl, then evaluate OUT.pkl")
        if kind is None:  # sniff said yes, then the file changed
            raise CheckpointError(f"{path}: not a StyleGAN network pickle nor a pickled BigGAN-style module")
        psi = _psi(options) if kind == "stylegan" else _psi(options, 0.0, 1.0)  # a bad flag fails before any code runs
        if not options.trust_checkpoint:
            what = (f"a StyleGAN network pickle (global {_first(globals_, PERSISTENCE)}), whose networks carry their "
                    "source code and run it when unpickled") if kind == "stylegan" else (
                    f"a pickled BigGAN-style module (global {_first(globals_, BIGGAN)}), which runs code when "
                    "unpickled")
            raise untrusted(path, what)
        obj = _unpickle(f, path, options)
        if kind == "stylegan":
            return load_stylegan(path, options, obj, psi)
        return load_biggan(path, options, obj, psi)


@hookimpl(trylast=True)
def register_loaders(register):
    register(StyleGANLoader())
