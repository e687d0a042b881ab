# One provider configuration per region. Terraform cannot create provider
# configurations from a variable's length, so the layout has exactly three
# regions (var.regions is validated to hold three) and three module blocks.

provider "aws" {
  alias  = "region_a"
  region = var.regions[0]

  default_tags {
    tags = local.tags
  }
}

provider "aws" {
  alias  = "region_b"
  region = var.regions[1]

  default_tags {
    tags = local.tags
  }
}

provider "aws" {
  alias  = "region_c"
  region = var.regions[2]

  default_tags {
    tags = local.tags
  }
}
