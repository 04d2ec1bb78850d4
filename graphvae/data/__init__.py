"""Datasets for training: reading, matching to a spec, splits, the labelled subset and batches.

This module is the one entry point: it reads digits and ``.npz`` files and matches arrays to the
spec; :mod:`graphvae.data.idx` reads the IDX files (MNIST, Fashion-MNIST, KMNIST) and
:mod:`graphvae.data.batches` holds the splits, binarizing and batches, :mod:`graphvae.data.labels` the
labelled subset.  Every name
below is importable from ``graphvae.data``.

API (the contract with the trainer; every user mistake raises
:class:`graphvae.errors.UserError` with one clear line)::

    ds = load_dataset(name, spec, data_dir=None) -> Dataset
        # name: "digits" | "mnist" | "fashion-mnist" | "kmnist" | "path/to/file.npz"
        ds.train, ds.test   # dict[str, np.ndarray] keyed by spec variable name, first axis = example:
                            #   observed: float32 (N, *var.shape) (categorical observed: int64 (N, *var.value_shape))
                            #   supervised categorical: int64 (N,) class index, -1 = missing label
                            #   supervised continuous: float32 (N, *var.shape), NaN = missing label
    names, arrays = read_npz(Path(f), f, ["x", "y"])  # every array's name; those asked for that exist,
                                                       # each size-checked before it is allocated
                            #   "_class": int64 (N,) the data's class labels when no spec variable receives
                            #   them (reporting only; keys starting with "_" never go into a batch)
        ds.classes          # number of classes of the data's labels (10 for the image sets), or None
        ds.image_shape      # (28, 28), (8, 8), (C, H, W) ... for pictures, or None
        ds.observed, ds.label_var   # spec variables receiving the data / the class labels (or None)
        ds.n_train, ds.n_test
    train, val = split_validation(arrays, fraction, seed)         # seeded, disjoint, order kept
    idx = choose_labelled(labels, n, seed) -> np.ndarray          # sorted int64 indices; n = -1: all
    save_labelled(run_dir, idx); idx = load_labelled(run_dir, n_examples=None)   # labelled.json
    masked = mask_unlabelled(arrays, spec, idx)                   # labels outside idx -> -1 / NaN
    x = binarize(x, mode, generator=None)                         # torch: dynamic | static | threshold
    arrays = binarize_arrays(arrays, spec, mode, seed=0)          # once, numpy: static/threshold draws
    arrays = evaluation_arrays(arrays, spec, mode)                # fixed binarization for val/test
    batch = to_batch(arrays, idx, device="cpu")                   # dict[str, Tensor], the model's format
    batches = SemiSupervisedBatches(train, spec, labelled_idx, batch_size=100, labelled_per_batch=10,
                                    binarize="dynamic", generator=torch.Generator().manual_seed(seed), device="cpu")
        len(batches)                 # steps per epoch; one epoch = one pass over all training examples
        for batch in batches: ...    # the rest of the current epoch; then batches.epoch += 1
                                     # a Batch (a dict) with .layout, e.g. ((frozenset({"y"}), 100),
                                     #                                      (frozenset(), 100))
        batches.state_dict() / batches.load_state_dict(state)   # resume exactly (ints + a ByteTensor)
    data = prepare_data(spec, data="digits", data_dir=None, validation=0.1, labels=100, seed=0,
                        labelled=None) -> TrainingData(dataset, train, val, test, labelled, label_var)
        data.n_labelled, data.summary()   # "digits: 1294 train (100 labelled: 10 per class), ..."
        # labelled=None chooses the subset from the seed; pass load_labelled(run_dir) on resume

Decisions, documented here because results depend on them:

* Lookup of IDX files (mnist, fashion-mnist, kmnist): ``data_dir``, then ``$GRAPHVAE_DATA``, then
  ``~/.cache/graphvae/data``; in each folder ``F`` the places ``F``, ``F/<name>`` and
  ``F/<TorchvisionName>/raw`` are tried, and the first place holding all four files wins.  File
  names: ``train-images-idx3-ubyte`` (also ``train-images.idx3-ubyte``), with or without ``.gz``
  (detected by content, not name), optionally prefixed ``<name>-``.
* ``digits``: scikit-learn's bundled 8x8 digits, grey levels 0..16 scaled to [0, 1]; test set a
  stratified 20% split with the fixed seed ``DIGITS_SPLIT_SEED`` (independent of the run seed):
  1437 training and 360 test images.
* ``.npz``: arrays named after spec variables; ``test_<name>`` arrays give the test split,
  otherwise ``NPZ_TEST_FRACTION`` of the examples are held out with seed ``NPZ_SPLIT_SEED``.
* Sizes, checked before anything is allocated (``idx.check_data_size``): an ``.npz`` array's
  ``.npy`` header against its zip member's size, an IDX header's dims against what the stream
  holds; the values one file declares may take at most half of this machine's memory
  (``MAX_DATA_BYTES``), and compressed values may expand at most ``MAX_EXPANSION`` (500) times
  beyond ``EXPANSION_FLOOR`` (64 MB).  Only the arrays a spec needs are read from an ``.npz``.
* IDX labels are whole class indices 0..9 (an IDX label file gives every image's class; none is
  missing): NaN, fractional or negative labels are refused naming the file.
* Matching: an array fits a variable when its size per example equals the variable's; it is
  reshaped to the spec's shape (784 values fit ``binary[784]`` and ``unit[1, 28, 28]``).  Domains
  are checked: binary/unit in [0, 1] (grey levels fed to ``binary`` are binarized), positive > 0,
  real finite, simplex rows sum to 1, categorical integer in range (supervised: or missing).
* Validation split: ``fraction`` of the training examples, a random permutation seeded by the run
  seed (stream ``VALIDATION_STREAM``); the rest keep their original order.  The labelled subset is
  chosen *after* the split, by index into the remaining training examples.  Validation keeps all
  its labels (they are used for model selection only); the test set is for the final report.
* Labelled subset: balanced per class of the first categorical supervised variable; when ``n`` is
  not divisible by the number of classes, the lowest class values get one more each; a class with
  too few labelled examples gives its shortfall to the others.  Continuous labels: a seeded
  uniform choice among the examples that have a label.
* Batches: ``labelled_per_batch`` examples come from the labelled subset (with their labels),
  cycling through seeded permutations of it; the rest of the batch walks through a seeded
  permutation of *all* training examples with every label masked.  Labelled examples come first in
  a batch.  The last batch of an epoch may hold fewer unlabelled examples.  Binarization
  ``dynamic`` draws a fresh Bernoulli sample per batch; ``static``/``threshold`` are applied once.
  Each epoch draws one seed from the generator; the permutations and per-step noise derive from it,
  so ``state_dict()`` (epoch, step, epoch seed, generator state) resumes exactly.
"""

from __future__ import annotations

from graphvae.data.batches import (BINARIZE_MODES, STATIC_BINARIZE_SEED, Batch, SemiSupervisedBatches,  # noqa: F401
                                   binarize, binarize_arrays, count_examples, evaluation_arrays, hide_labels,
                                   split_validation, take_examples, to_batch)
from graphvae.data.labels import (LABELLED_FILE, choose_labelled, label_variable, labelled_counts,  # noqa: F401
                                  load_labelled, mask_unlabelled, save_labelled)
from graphvae.data.datasets import (CLASS_KEY, DIGITS_SPLIT_SEED, DIGITS_TEST_FRACTION, NPZ_SPLIT_SEED,  # noqa: F401
                                    NPZ_TEST_FRACTION, Dataset, TrainingData, fit_variable, infer_image_shape,
                                    load_dataset, prepare_data, read_npz)
from graphvae.data.idx import (DATA_ENV, DEFAULT_DATA_DIR, IDX_FILES, IMAGE_CLASSES, IMAGE_DATASETS,  # noqa: F401
                               data_dirs, find_idx_files, parse_idx, read_idx, read_idx_dataset, write_idx)
from graphvae.spec.settings import DATASETS  # noqa: F401  (the names the settings table accepts)
