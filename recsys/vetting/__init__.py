"""The merchandiser's vetting loop: judgments of recommended pairs, queues of seeds to judge,
the rules they propose, vetted precision."""
