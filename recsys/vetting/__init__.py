"""The merchandiser's vetting loop: judgments, vetted precision, behavioural checks."""
