"""The training wing: everything ``genreshift train-vocoder`` and ``genreshift finetune``
need and ``convert`` does not.

``loop`` holds what both trainers share (run folder, checkpoints that resume exactly, the
loop itself); ``finetune`` and ``vocoder`` each give it their own step, evaluation and
checkpoint. ``data`` caches mels and draws crops, ``progress`` shows the bar and writes
``log.jsonl``, ``samples`` writes what evaluations produce; the losses and the vocoder
discriminators have their own modules; ``config`` holds the training-only settings and
``cli`` the two commands. torchrun helpers come from ``genreshift.distrib``, shared with
``convert``. Importing this package imports no torch.
"""
