"""Fine-tuning and evaluation on the paper's downstream tasks (seqcls, tokcls, qa, mc).

Datasets are named as the released LinkBERT data folders, without the ``_hf`` suffix
(``NCBI-disease``, ``pubmedqa``, ``medqa_usmle``, ...); MRQA sets as the in-house split files
(``squad``, ``hotpot``, ``triviaqa``, ``searchqa``, ``naturalqa``, ``newsqa``).
"""
