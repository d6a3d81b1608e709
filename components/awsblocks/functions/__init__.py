"""Functions: Lambda functions (untriggered, queue-fed, scheduled) and their code signing."""
