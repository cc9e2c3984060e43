"""Gene representations: model-written profiles, text embeddings, and downstream tasks that use them."""
