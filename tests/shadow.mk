# Shadow filter tests (plugin/).
