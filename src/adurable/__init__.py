"""adurable: async durable functions for AWS Lambda."""
