"""Application tooling around the SAS library: evaluation (``evaluate``), the
truncation audit (``audit``), the HTML step inspector (``inspect_page``, its page in
``inspect_page.html``), Pass@k and AES (``metrics``), JSONL reading (``jsonl``), the
speed comparison (``bench``, over ``workload`` and the numpy contender ``numpy_mask``). The
``sas-core`` CLI drives them; the library (``sas_core``) does not import them."""
