"""Training: `mmsd train` (MMSD-Net and the baselines), fine-tuning to one speaker (the person-ID prior),
personal models, and the sender's emotion classifier.

The layer above `evaluation`: a trainer validates with its metrics, fine-tuning scores with its protocol.
"""
